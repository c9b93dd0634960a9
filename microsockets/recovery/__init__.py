"""Session recovery: the log of frames sent to rooms, and the sessions kept across reconnects."""

from .log import MemoryLog, with_offset
from .store import SessionStore

__all__ = ["MemoryLog", "SessionStore", "with_offset"]
