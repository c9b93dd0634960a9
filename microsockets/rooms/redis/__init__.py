"""The Redis back-end: rooms across processes and machines, and an emitter for scripts."""

# The modules, each with one job:
#   manager.py     RedisRoomManager: a ClusterRoomManager over a RedisTransport
#   transport.py   RedisTransport: wires the three links below to the cluster manager
#   membership.py  membership sets, the node heartbeat, the purge of dead nodes
#   subscriber.py  the pub/sub connection and the task that listens on it
#   emitter.py     RedisEmitter, for sending from code that holds no connections
#   wire.py        key and channel names, the purge script
#   client.py      the Redis client, call deadlines, reconnection back-off

from .emitter import RedisEmitter
from .manager import DEFAULT_RECONNECT_DELAYS as DEFAULT_RECONNECT_DELAYS  # as before the split
from .manager import RedisRoomManager
from .transport import RedisTransport

__all__ = ["RedisEmitter", "RedisRoomManager", "RedisTransport"]
