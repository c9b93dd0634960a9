"""What microsockets writes to Redis: key and channel names, and the purge script."""

# Layout in Redis, every name under `channel_prefix` (`P` below):
#
# - channel `P:all` carries broadcasts to everyone or to several rooms, `P:r:<room>` those to
#   one room; a process subscribes to `P:all` and to the channel of every room it has a member in.
# - key `P:node:<node>` (string, expires after `node_ttl`) says that a process is alive;
#   `P:nodes` (set) lists the processes that registered.
# - `P:conns:<node>` (set of connection ids), `P:owner:<id>` (the node of a connection),
#   `P:rooms:<id>` (set of its rooms) and `P:members:<room>` (set of `<node>:<id>`).
# - presence (docs/presence.md): `P:presence:<room>` (hash `<node>:<id>` -> metadata JSON) and
#   `P:presence_of:<node>` (hash `<id>:<room>` -> "1"), which lets a purge find every entry
#   of a node, those of sessions held for a grace included.
#
# - with recovery on (microsockets/rooms/redis/recovery.py): stream `P:log` holds every frame
#   sent to rooms (fields `f` frame, `t` targets as JSON or absent for everyone, `s` skip),
#   trimmed to about `MAX_ENTRIES` entries and to the window by MINID; `P:session:<token>`
#   (string, JSON `{"id", "start"[, "rooms", "state"]}`, expires after the window) is a session
#   a resume token may take once.
#
# A publication is an envelope (microsockets/rooms/envelope.py), published once per broadcast:
# on `P:r:<room>` when it targets one room, else on `P:all`.

from __future__ import annotations

# Removes every trace of one node, unless its heartbeat key exists and ARGV[3] is not "1".
# Atomic, so a node that comes back and re-registers is never half-erased. Returns the number
# of connections erased (-1: the node lives) and its presence entries as room, id, meta, ...
_PURGE = """
local p, node = ARGV[1], ARGV[2]
if ARGV[3] ~= '1' and redis.call('EXISTS', p .. ':node:' .. node) == 1 then return {-1, {}} end
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
local lost, own = {}, p .. ':presence_of:' .. node
for _, field in ipairs(redis.call('HKEYS', own)) do
  local at = string.find(field, ':', 1, true)
  local id, room = string.sub(field, 1, at - 1), string.sub(field, at + 1)
  local key, entry = p .. ':presence:' .. room, node .. ':' .. id
  local meta = redis.call('HGET', key, entry)
  if meta then
    redis.call('HDEL', key, entry)
    table.insert(lost, room)
    table.insert(lost, id)
    table.insert(lost, meta)
  end
end
redis.call('DEL', own)
return {#conns, lost}
"""


# Takes a session (GET and DEL) only if it belongs to the id the client named.
_TAKE = """
local record = redis.call('GET', KEYS[1])
if not record then return false end
if cjson.decode(record)['id'] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return record
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

    def channel(self, room: str | None) -> str:
        """The channel of one room; None: the one every process listens to."""
        return self.all if room is None else self.room_channel_prefix + room

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

    @property
    def log(self) -> str:
        return f"{self.prefix}:log"

    def session(self, token: str) -> str:
        return f"{self.prefix}:session:{token}"

    def presence(self, room: str) -> str:
        return f"{self.prefix}:presence:{room}"

    def presence_of(self, node: str) -> str:
        return f"{self.prefix}:presence_of:{node}"
