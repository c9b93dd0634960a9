"""Close codes: websockets' `CloseCode` for RFC 6455's, plus the library's own 4000-4999 ones.

docs/protocol.md lists which of them the server sends, and when.
"""

from __future__ import annotations

from websockets.frames import CloseCode

__all__ = ["REFUSED", "SESSION_RESUMED", "CloseCode", "is_normal"]


def is_normal(code: int) -> bool:
    """Whether a close code means the connection simply ended (1000 or 1001)."""
    return code in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY)


REFUSED = 4000
"""A refused handshake read by a client that sent `ms_v=2`: the close code is 4000 + the HTTP
status (4401, 4403, 4429, 4503, ...)."""

SESSION_RESUMED = 4409
"""The connection of a session that another connection just resumed (a half-open one)."""
