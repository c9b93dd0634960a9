"""The Origin check that stops Cross-Site WebSocket Hijacking."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeAlias
from urllib.parse import urlsplit

AllowedOrigins: TypeAlias = Collection[str] | Callable[[str], bool] | None
"""A list of origins ("*" allows any), a predicate, or None: the page must share the Host."""


def origin_allowed(allowed: AllowedOrigins, origin: str | None, host: str | None) -> bool:
    """Whether a handshake may proceed.

    No Origin header means no browser (a script, a server): nothing for the check to protect.
    """
    if origin is None:
        return True
    if allowed is None:
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()
    if callable(allowed):
        return allowed(origin)
    return origin in allowed or "*" in allowed
