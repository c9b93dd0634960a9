"""Rooms across processes and machines: Redis sets for membership, Redis pub/sub for delivery."""

# The modules, each with one job:
#   manager.py     RedisRoomManager, the room manager of one process (a node) in a cluster
#   emitter.py     RedisEmitter, for sending from code that holds no connections
#   publisher.py   the outbox and the task that publishes it
#   subscriber.py  the pub/sub connection and the task that listens on it
#   wire.py        key and channel names, the purge script, the message format
#   client.py      the Redis client, call deadlines, reconnection back-off
#   outage.py      logging an outage once, when it starts and when it ends

from .emitter import RedisEmitter
from .manager import DEFAULT_RECONNECT_DELAYS as DEFAULT_RECONNECT_DELAYS  # as before the split
from .manager import RedisRoomManager

__all__ = ["RedisEmitter", "RedisRoomManager"]
