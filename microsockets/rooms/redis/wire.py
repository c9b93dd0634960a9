"""What microsockets writes to Redis: key and channel names, the purge script, message format."""

# Layout in Redis, every name under `channel_prefix` (`P` below):
#
# - channel `P:all` carries broadcasts to everyone, channel `P:r:<room>` those to one room;
#   a process subscribes to `P:all` and to the channel of every room it has a member in.
# - key `P:node:<node>` (string, expires after `node_ttl`) says that a process is alive;
#   `P:nodes` (set) lists the processes that registered.
# - `P:conns:<node>` (set of connection ids), `P:owner:<id>` (the node of a connection),
#   `P:rooms:<id>` (set of its rooms) and `P:members:<room>` (set of `<node>:<id>`).
#
# A message is a one-line JSON header `[1, node, skip, targets]`, a newline, then the frame
# exactly as the application encoded it; it is encoded once and published once per room.

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

_FORMAT = 1

# Removes every trace of one node, unless its heartbeat key exists and ARGV[3] is not "1".
# Atomic, so a node that comes back and re-registers is never half-erased.
_PURGE = """
local p, node = ARGV[1], ARGV[2]
if ARGV[3] ~= '1' and redis.call('EXISTS', p .. ':node:' .. node) == 1 then return -1 end
local conns = redis.call('SMEMBERS', p .. ':conns:' .. node)
for _, id in ipairs(conns) do
  for _, room in ipairs(redis.call('SMEMBERS', p .. ':rooms:' .. id)) do
    redis.call('SREM', p .. ':members:' .. room, node .. ':' .. id)
  end
  if redis.call('GET', p .. ':owner:' .. id) == node then
    redis.call('DEL', p .. ':rooms:' .. id, p .. ':owner:' .. id)
  end
end
redis.call('DEL', p .. ':conns:' .. node)
redis.call('SREM', p .. ':nodes', node)
return #conns
"""


class _Names:
    """The Redis key and channel names of one application (one channel prefix)."""

    __slots__ = ("all", "prefix", "room_channel_prefix")

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("channel_prefix must be a non-empty string")
        self.prefix = prefix
        self.all = f"{prefix}:all"
        self.room_channel_prefix = f"{prefix}:r:"

    def channel(self, room: str) -> str:
        return self.room_channel_prefix + room

    def heartbeat(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}:nodes"

    def conns(self, node: str) -> str:
        return f"{self.prefix}:conns:{node}"

    def owner(self, member_id: str) -> str:
        return f"{self.prefix}:owner:{member_id}"

    def rooms(self, member_id: str) -> str:
        return f"{self.prefix}:rooms:{member_id}"

    def members(self, room: str) -> str:
        return f"{self.prefix}:members:{room}"


def _pack(node: str, frame: str, targets: Sequence[str] | None, skip: str | None) -> bytes:
    """The pub/sub message: a JSON header line, then the frame untouched."""
    header = json.dumps([_FORMAT, node, skip, targets], separators=(",", ":"))
    return f"{header}\n{frame}".encode()


def _unpack(data: bytes) -> tuple[str, str | None, list[str] | None, str]:
    """Split a message into node, skip, targets and frame; ValueError if it is not ours."""
    header, newline, frame = data.decode().partition("\n")
    fields = json.loads(header)
    if not newline or not isinstance(fields, list) or len(fields) != 4 or fields[0] != _FORMAT:
        raise ValueError("not a microsockets message of format 1")
    _, node, skip, targets = fields
    if (
        not isinstance(node, str)
        or not (skip is None or isinstance(skip, str))
        or not (targets is None or isinstance(targets, list))
    ):
        raise ValueError("malformed microsockets message header")
    return node, skip, targets, frame


def _publications(
    names: _Names, node: str, frame: str, to: Collection[str] | None, skip: str | None
) -> list[tuple[str, bytes]]:
    """The (channel, message) pairs of one broadcast: one to everyone, or one per distinct room.

    The message is packed once and names every target room, in order, without repeats.
    """
    if to is None:
        return [(names.all, _pack(node, frame, None, skip))]
    targets = list(dict.fromkeys(to))
    if not targets:
        return []
    data = _pack(node, frame, targets, skip)
    return [(names.channel(room), data) for room in targets]
