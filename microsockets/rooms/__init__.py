"""Room managers: in memory by default; across processes, a cluster manager over a transport.

base.py       BaseRoomManager, the contract every manager keeps, and Member
index.py      RoomIndex: the local rooms, sans I/O, and delivery to local members
memory.py     MemoryRoomManager: the index alone (one process)
transport.py  Transport: what a back-end implements (publish, subscribe, membership)
cluster.py    ClusterRoomManager: the index plus a transport
envelope.py   the format of a publication and the channel it takes
publisher.py  a bounded outbox drained in ordered batches (for transports)
outage.py     logging a back-end's outage once, when it starts and when it ends
redis/        the Redis transport, RedisRoomManager and RedisEmitter
"""

from .base import BaseRoomManager, Member
from .cluster import ClusterRoomManager
from .index import RoomIndex
from .memory import MemoryRoomManager
from .transport import LocalNode, Transport

RoomManager = MemoryRoomManager
"""The 1.0.0 name of the in-memory manager, kept so `microsockets.rooms.RoomManager` works."""

__all__ = [
    "BaseRoomManager",
    "ClusterRoomManager",
    "LocalNode",
    "Member",
    "MemoryRoomManager",
    "RoomIndex",
    "RoomManager",
    "Transport",
]
