"""The Python client: `async with connect(url) as sock:` (docs/python-client.md).

It has the JS client's features, defaults and option names: reconnect with back-off, a send
buffer, heartbeats, requests, session recovery, params and readable refusals, presence.
"""

from __future__ import annotations

from ..exceptions import ConnectionClosed, ErrorReply
from .api import SocketAPI
from .backoff import DEFAULT_RECONNECT_DELAYS
from .errors import BufferFull, Disconnected
from .presence import PresenceDiff
from .retry import MAX_REFUSALS, NO_RETRY_CLOSE_CODES
from .socket import HEARTBEAT_TIMEOUT_CODE, Socket, connect

__all__ = [
    "DEFAULT_RECONNECT_DELAYS",
    "HEARTBEAT_TIMEOUT_CODE",
    "MAX_REFUSALS",
    "NO_RETRY_CLOSE_CODES",
    "BufferFull",
    "ConnectionClosed",
    "Disconnected",
    "ErrorReply",
    "PresenceDiff",
    "Socket",
    "SocketAPI",
    "connect",
]
