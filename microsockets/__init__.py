"""microsockets: realtime events over WebSocket for ASGI, with rooms and broadcasts."""

from .application import Application
from .connection import Connection
from .events import EventRouter
from .exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidPayload,
    LimitExceeded,
    MicrosocketsError,
    ProtocolError,
    Reject,
    WebSocketStateError,
)
from .raw import RawSocket
from .rooms import BaseRoomManager, MemoryRoomManager, RoomManager
from .socket import Socket

__version__ = "2.0.0"

__all__ = [
    "Application",
    "BaseRoomManager",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "EventRouter",
    "InvalidPayload",
    "LimitExceeded",
    "MemoryRoomManager",
    "MicrosocketsError",
    "ProtocolError",
    "RawSocket",
    "Reject",
    "RoomManager",
    "Socket",
    "WebSocketStateError",
    "__version__",
]
