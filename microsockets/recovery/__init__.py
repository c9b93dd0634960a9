"""Session recovery: the log of frames sent to rooms, and the sessions kept across reconnects."""

from .base import Claim, Resumable, Resumed, SessionStore, new_token
from .local import LocalSessions
from .log import MemoryLog, offset_key, offset_of, with_offset
from .store import MemorySessionStore

__all__ = [
    "Claim",
    "LocalSessions",
    "MemoryLog",
    "MemorySessionStore",
    "Resumable",
    "Resumed",
    "SessionStore",
    "new_token",
    "offset_key",
    "offset_of",
    "with_offset",
]
