"""The error taxonomy: what failed decides who handles it.

- ``BadRecord``: one input record is unusable. It becomes a ledger row and the run goes on
  (or, with ``--strict``, the run stops and names the file and position).
- ``ShardError``: a whole input file or output shard failed; recorded, the run goes on.
- ``RetryableError``: transient (server 5xx, timeout); retried with backoff and a budget.
- ``ConfigError``: the run cannot start; raised before any work, with a message that names the fix.
- ``SchemaError``: a table does not fit the record schema.
"""

from __future__ import annotations


class FusionforgeError(Exception):
    """Base class of every error fusionforge raises on purpose."""


class ConfigError(FusionforgeError):
    """Bad configuration or arguments; nothing has run yet."""


class SchemaError(FusionforgeError):
    """A table does not match the record schema."""


class BadRecord(FusionforgeError):
    """One input record cannot be used; ``where`` names its file and position."""

    def __init__(self, reason: str, where: str = "") -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"{where}: {reason}" if where else reason)


class ShardError(FusionforgeError):
    """A whole input file or output shard failed."""


class RetryableError(FusionforgeError):
    """A transient failure worth retrying."""


class MissingDependency(ConfigError):
    """An optional extra is not installed; the message gives the pip line to run."""

    def __init__(self, module: str, extra: str, hint: str = "") -> None:
        super().__init__(
            f"{module!r} is not installed; run: pip install 'fusionforge[{extra}]'" + (f" ({hint})" if hint else "")
        )
