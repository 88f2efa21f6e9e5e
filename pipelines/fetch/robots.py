"""``X-Robots-Tag`` opt-outs: the directives by which a site says its images are not for training.

A header value is a comma-separated list of directives, optionally scoped to one crawler
(``otherbot: noai, noimageai``); the scope lasts to the end of that header value. A directive
addressed to every crawler, to ``*`` or to fusionforge's own token counts. ``noai`` and ``noimageai``
are the explicit AI opt-outs; ``none`` (= noindex, nofollow), ``noindex`` and ``noimageindex`` are
honoured too, as img2dataset does, since a site that refuses indexing has not agreed to more.
"""

from __future__ import annotations

from collections.abc import Iterable

OPT_OUT_DIRECTIVES = ("noai", "noimageai", "none", "noindex", "noimageindex")
# Directives that carry a value after a colon, so "name: value" is not a crawler scope.
_VALUED = {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}


def opt_out(values: Iterable[str], agent: str) -> str | None:
    """The first opt-out directive in the ``X-Robots-Tag`` header ``values`` that applies to ``agent``, or None."""
    agent = agent.lower()
    for value in values:
        scope = None
        for token in value.split(","):
            token = token.strip().lower()
            head, colon, rest = token.partition(":")
            if colon and head.strip() not in _VALUED:
                scope, token = head.strip(), rest.strip()
            if scope in (None, "*", agent) and token in OPT_OUT_DIRECTIVES:
                return token
    return None
