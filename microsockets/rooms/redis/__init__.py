"""Rooms across processes and machines: Redis sets for membership, Redis pub/sub for delivery."""

from .manager import DEFAULT_RECONNECT_DELAYS as DEFAULT_RECONNECT_DELAYS  # as before the split
from .manager import RedisEmitter, RedisRoomManager

__all__ = ["RedisEmitter", "RedisRoomManager"]
