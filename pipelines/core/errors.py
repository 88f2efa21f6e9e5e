"""The error taxonomy: what failed decides who handles it.

- ``BadRecord``: one input record is unusable. It becomes a ledger row and the run goes on
  (or, with ``--strict``, the run stops and names the file and position). ``BadMedia`` is the
  kind for an image or video that cannot or must not be decoded; its ``reason`` is the ledger's.
- ``ConfigError``: a setting or argument is wrong (``MissingDependency``: an extra is not
  installed), with a message that names the fix. Raised before any work where a cheap check can
  tell; a model or tokenizer file that is not what it claims is found when it is first loaded.
- ``RunError``: the run started and cannot finish: a child process failed or timed out, the inputs
  as a whole cannot give a result, or a check of the written output failed.
- ``SchemaError``: a table does not fit the record schema.

Transient failures are not errors here: the model clients retry them with backoff and record
what still fails per request (``fusionforge.rft.clients``).
"""

from __future__ import annotations


class FusionforgeError(Exception):
    """Base class of every error fusionforge raises on purpose."""


class ConfigError(FusionforgeError):
    """Bad configuration or arguments; the message names the fix."""


class MissingDependency(ConfigError):
    """An optional extra is not installed; the message gives the pip line to run."""

    def __init__(self, module: str, extra: str, hint: str = "") -> None:
        super().__init__(
            f"{module!r} is not installed; run: pip install 'fusionforge[{extra}]'" + (f" ({hint})" if hint else "")
        )


class RunError(FusionforgeError):
    """The run started and failed as a whole (not one record); the message says what failed."""


class SchemaError(FusionforgeError):
    """A table does not match the record schema."""


class BadRecord(FusionforgeError):
    """One input record cannot be used; ``where`` names its file and position."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class BadMedia(BadRecord):
    """An image or video that cannot or must not be decoded; ``reason`` is a short code, ``detail`` the rest."""

    def __init__(self, reason: str, detail: str) -> None:
        self.detail = detail
        super().__init__(reason)

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    def __reduce__(self) -> tuple[type[BadMedia], tuple[str, str]]:
        return type(self), (self.reason, self.detail)  # intact across processes (Ray workers)


def media_error(exc: BadMedia | OSError) -> str:
    """A record's ``error`` for media that failed to load: ``"{reason}: {detail}"`` (unreadable bytes:
    ``unreadable_media``)."""
    return str(exc) if isinstance(exc, BadMedia) else f"unreadable_media: {exc}"
