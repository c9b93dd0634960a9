"""Room managers: in memory by default, Redis (microsockets.rooms.redis) across processes."""

from .base import BaseRoomManager, Member
from .memory import MemoryRoomManager

RoomManager = MemoryRoomManager
"""The 1.0.0 name of the in-memory manager, kept so `microsockets.rooms.RoomManager` works."""

__all__ = ["BaseRoomManager", "Member", "MemoryRoomManager", "RoomManager"]
