"""The Origin check that stops Cross-Site WebSocket Hijacking."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeAlias
from urllib.parse import urlsplit

AllowedOrigins: TypeAlias = Collection[str] | Callable[[str], bool] | None
"""A list of origins ("*" allows any), a predicate, or None: the page must share the Host
and the scheme (an https page for wss://, an http page for ws://)."""

_PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def origin_allowed(
    allowed: AllowedOrigins, origin: str | None, host: str | None, scheme: str = "ws"
) -> bool:
    """Whether a handshake may proceed; `scheme` is the connection's own (scope["scheme"]).

    No Origin header means no browser (a script, a server): nothing for the check to protect.
    An Origin that does not parse (`http://[`) is refused, by a predicate that raises
    ValueError on it too.
    """
    if origin is None:
        return True
    try:
        if allowed is None:
            return host is not None and _same_site(origin, host, scheme)
        if callable(allowed):
            return allowed(origin)
    except ValueError:
        return False
    return origin in allowed or "*" in allowed


def _same_site(origin: str, host: str, scheme: str) -> bool:
    """Whether the page at `origin` is served by this host over the matching scheme."""
    parts = urlsplit(origin)
    return parts.scheme == _PAGE_SCHEME.get(scheme) and parts.netloc.lower() == host.lower()
