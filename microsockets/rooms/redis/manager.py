"""Rooms across processes and machines: Redis sets for membership, Redis pub/sub for delivery.

Each process keeps its own connections in the in-memory index it inherits from
MemoryRoomManager and delivers to them directly; Redis only carries what other processes
need. docs/scaling.md describes the deployment, the limits and what an outage loses.

Layout in Redis, every name under `channel_prefix` (`P` below):

- channel `P:all` carries broadcasts to everyone, channel `P:r:<room>` those to one room;
  a process subscribes to `P:all` and to the channel of every room it has a member in.
- key `P:node:<node>` (string, expires after `node_ttl`) says that a process is alive;
  `P:nodes` (set) lists the processes that registered.
- `P:conns:<node>` (set of connection ids), `P:owner:<id>` (the node of a connection),
  `P:rooms:<id>` (set of its rooms) and `P:members:<room>` (set of `<node>:<id>`).

A message is a one-line JSON header `[1, node, skip, targets]`, a newline, then the frame
exactly as the application encoded it; it is encoded once and published once per room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from ...codec import DEFAULT, Codec
from ...protocol import Protocol, check_event_name
from ...socket import target_rooms
from ...types import JSON
from ..base import Member
from ..memory import MemoryRoomManager

__all__ = ["RedisEmitter", "RedisRoomManager"]

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package
T = TypeVar("T")

DEFAULT_RECONNECT_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnection attempts; the last value repeats."""

_FORMAT = 1
_NODE_ID_LENGTH = 32
_PUBLISH_BATCH = 512
_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

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


async def _within(awaitable: Awaitable[T], timeout: float) -> T:
    """Await a Redis call for `timeout` seconds at most.

    Unlike a bare wait_for, an error the call raises while being cancelled is consumed
    rather than reported as "never retrieved".
    """
    task = asyncio.ensure_future(awaitable)
    task.add_done_callback(_consume)
    return await asyncio.wait_for(task, timeout)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _targets(to: Collection[str]) -> list[str]:
    """The rooms of `to` without repeats, in their order."""
    return list(dict.fromkeys(to))


def _client(
    url: str, timeout: float, max_connections: int, extra: Mapping[str, Any] | None
) -> Redis:
    """A client whose calls fail within `timeout` instead of retrying, and whose pool makes
    callers wait (up to `timeout`) rather than fail when all its connections are busy."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
        "timeout": timeout,
    }
    options.update(extra or {})
    options["decode_responses"] = False  # channels and messages are handled as bytes
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))


class _Outage:
    """Logs a Redis outage once when the first link fails and once when the last recovers."""

    def __init__(self) -> None:
        self._down: set[str] = set()
        self._since = 0.0
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._down)

    def failed(self, link: str, exc: BaseException) -> None:
        if not self._down:
            self._since = time.monotonic()
            self.dropped = 0
            logger.warning(
                "Redis %s link failed (%s: %s); local delivery continues, "
                "reconnecting with back-off",
                link,
                type(exc).__name__,
                exc,
            )
        self._down.add(link)

    def recovered(self, link: str) -> None:
        if link in self._down:
            self._down.discard(link)
            if not self._down:
                logger.warning(
                    "Redis reachable again after %.1f s; %d messages could not be published",
                    time.monotonic() - self._since,
                    self.dropped,
                )


class RedisRoomManager(MemoryRoomManager):
    """Rooms shared by every process pointed at the same Redis and channel prefix.

    `url` picks the server, database, password and TLS (`rediss://`). A process whose
    heartbeat stops (kill -9, lost host) has its members dropped from `members()` and
    `rooms_of()` `node_ttl` seconds later at most. While Redis is away, members of this
    process still get every message sent from this process; messages to and from the
    others are lost (pub/sub is at-most-once), except that up to `max_pending` outgoing
    messages younger than `pending_timeout` seconds are published once Redis is back.
    """

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str = "microsockets",
        node_ttl: float = 15.0,
        heartbeat_interval: float | None = None,
        operation_timeout: float = 1.0,
        max_pending: int = 10_000,
        pending_timeout: float = 10.0,
        reconnect_delays: Sequence[float] = DEFAULT_RECONNECT_DELAYS,
        max_connections: int = 32,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if node_ttl <= 0 or operation_timeout <= 0 or max_pending < 1 or not reconnect_delays:
            raise ValueError(
                "node_ttl and operation_timeout must be positive, max_pending at least 1, "
                "and reconnect_delays non-empty"
            )
        if max_connections < 2:
            raise ValueError("max_connections must be at least 2 (one is held by pub/sub)")
        self.url = url
        self.node_ttl = node_ttl
        self.heartbeat_interval = node_ttl / 3 if heartbeat_interval is None else heartbeat_interval
        if not 0 < self.heartbeat_interval < node_ttl:
            raise ValueError("heartbeat_interval must be positive and shorter than node_ttl")
        self.operation_timeout = operation_timeout
        self.pending_timeout = pending_timeout
        self.reconnect_delays = tuple(reconnect_delays)
        self.node_id = uuid.uuid4().hex
        self._pid = os.getpid()
        self._names = _Names(channel_prefix)
        self.max_connections = max_connections
        self._redis_options = redis_options
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: deque[tuple[float, str, bytes]] = deque(maxlen=max_pending)
        self._outbox_ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._commands_ok = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._outage = _Outage()
        self._dirty = True
        self._syncing = False
        self._closing = False
        self._overflowing = False
        self._purge: AsyncScript | None = None

    @property
    def channel_prefix(self) -> str:
        """The prefix of every Redis key and channel this manager uses."""
        return self._names.prefix

    @property
    def redis_available(self) -> bool:
        """Whether both links to Redis (commands and pub/sub) currently work."""
        return self._commands_ok.is_set() and self._subscribed.is_set()

    async def start(self) -> None:
        """Connect to Redis and start the background tasks; waits `operation_timeout` at most.

        A Redis that cannot be reached does not stop the application: it runs locally and
        keeps trying.
        """
        if self._tasks:
            return
        if os.getpid() != self._pid:  # forked after construction: be a node of our own
            self.node_id = uuid.uuid4().hex
            self._pid = os.getpid()
        self._outbox_ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._commands_ok = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._closing = False
        if self._outbox:
            self._outbox_ready.set()
        else:
            self._idle.set()
        self._redis = _client(
            self.url, self.operation_timeout, self.max_connections, self._redis_options
        )
        self._purge = self._redis.register_script(_PURGE)
        self._dirty = True
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="microsockets-redis-heartbeat"),
            asyncio.create_task(self._subscriber_loop(), name="microsockets-redis-subscriber"),
            asyncio.create_task(self._publisher_loop(), name="microsockets-redis-publisher"),
        ]
        ready = asyncio.gather(self._commands_ok.wait(), self._subscribed.wait())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ready, self.operation_timeout)

    async def stop(self) -> None:
        """Publish what is queued (briefly), erase this node from Redis and disconnect."""
        if not self._tasks:
            return
        heartbeat, subscriber, publisher = self._tasks
        self._tasks = []
        self._closing = True
        for task in (heartbeat, subscriber):
            task.cancel()
        if not self._idle.is_set() and self._commands_ok.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.operation_timeout)
        publisher.cancel()
        await asyncio.gather(heartbeat, subscriber, publisher, return_exceptions=True)
        redis = self._redis
        if redis is not None and self._purge is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await _within(self._erase_self(redis), self.operation_timeout)
            with contextlib.suppress(*_REDIS_ERRORS):
                await redis.aclose()
        self._redis = None
        self._commands_ok.clear()
        self._subscribed.clear()
        self._outbox.clear()

    async def connect(self, member: Member) -> None:
        await super().connect(member)
        entry = self._entry(member.id)
        names = self._names
        await asyncio.gather(
            self._write(
                lambda pipe: (
                    pipe.sadd(names.conns(self.node_id), member.id),
                    pipe.set(names.owner(member.id), self.node_id),
                    pipe.sadd(names.rooms(member.id), member.id),
                    pipe.sadd(names.members(member.id), entry),
                )
            ),
            self._watch([member.id]),
        )

    async def disconnect(self, member: Member) -> None:
        rooms = self._memberships.get(member.id)
        if rooms is None:
            return
        rooms = set(rooms)
        await super().disconnect(member)
        entry = self._entry(member.id)
        names = self._names

        def erase(pipe: Any) -> None:
            pipe.srem(names.conns(self.node_id), member.id)
            pipe.delete(names.owner(member.id), names.rooms(member.id))
            for room in rooms:
                pipe.srem(names.members(room), entry)

        await asyncio.gather(
            self._write(erase), self._unwatch([room for room in rooms if room not in self._rooms])
        )

    async def join(self, member: Member, room: str) -> None:
        rooms = self._memberships.get(member.id)
        if rooms is None or room in rooms:
            return
        await super().join(member, room)
        names = self._names
        await asyncio.gather(
            self._write(
                lambda pipe: (
                    pipe.sadd(names.rooms(member.id), room),
                    pipe.sadd(names.members(room), self._entry(member.id)),
                )
            ),
            self._watch([room]) if len(self._rooms[room]) == 1 else self._confirmed(room),
        )

    async def leave(self, member: Member, room: str) -> None:
        rooms = self._memberships.get(member.id)
        if rooms is None or room not in rooms:
            return
        await super().leave(member, room)
        names = self._names
        await asyncio.gather(
            self._write(
                lambda pipe: (
                    pipe.srem(names.rooms(member.id), room),
                    pipe.srem(names.members(room), self._entry(member.id)),
                )
            ),
            self._unwatch([] if room in self._rooms else [room]),
        )

    async def members(self, room: str) -> set[str]:
        """Members on every live node; this process's own only, while Redis is away."""
        found = await super().members(room)
        redis = self._redis
        if redis is None or not self._commands_ok.is_set():
            return found
        try:
            entries = await _within(
                redis.smembers(self._names.members(room)), self.operation_timeout
            )
            by_node: dict[str, list[str]] = {}
            for raw in entries:
                entry = _text(raw)
                node, member_id = entry[:_NODE_ID_LENGTH], entry[_NODE_ID_LENGTH + 1 :]
                if node != self.node_id:
                    by_node.setdefault(node, []).append(member_id)
            alive = await self._alive(redis, by_node)
        except _REDIS_ERRORS as exc:
            self._commands_failed(exc)
            return found
        for node, ids in by_node.items():
            if node in alive:
                found.update(ids)
        await self._purge_dead(redis, set(by_node) - alive)
        return found

    async def rooms_of(self, member_id: str) -> set[str]:
        """The rooms of a connection on any live node; empty if it is unknown or its node died."""
        if member_id in self._memberships:
            return await super().rooms_of(member_id)
        redis = self._redis
        if redis is None or not self._commands_ok.is_set():
            return set()
        names = self._names
        try:
            pipe = redis.pipeline(transaction=False)
            pipe.get(names.owner(member_id))
            pipe.smembers(names.rooms(member_id))
            owner_raw, rooms_raw = await _within(pipe.execute(), self.operation_timeout)
            owner = _text(owner_raw) if owner_raw is not None else None
            if owner is None or owner == self.node_id:
                return set()
            alive = await self._alive(redis, [owner])
        except _REDIS_ERRORS as exc:
            self._commands_failed(exc)
            return set()
        if owner not in alive:
            await self._purge_dead(redis, {owner})
            return set()
        return {_text(raw) for raw in rooms_raw}

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Deliver locally now and queue one publication per room; never waits for Redis."""
        self.deliver(frame, to, skip)
        if not self._tasks:
            return
        if to is None:
            self._enqueue(self._names.all, _pack(self.node_id, frame, None, skip))
            return
        targets = _targets(to)
        if targets:
            data = _pack(self.node_id, frame, targets, skip)
            for room in targets:
                self._enqueue(self._names.channel(room), data)

    # -- delivery of what other nodes published --------------------------------------------

    def _receive(self, channel: bytes, data: bytes) -> None:
        try:
            node, skip, targets, frame = _unpack(data)
        except (ValueError, UnicodeDecodeError):
            logger.debug("ignored a message on %r that is not a microsockets message", channel)
            return
        if node == self.node_id:
            return
        if targets is None:
            self.deliver(frame, None, skip)
            return
        room = channel.decode()[len(self._names.room_channel_prefix) :]
        try:
            position = targets.index(room)
        except ValueError:
            return
        if position == 0:
            self.deliver(frame, (room,), skip)
            return
        earlier = set(targets[:position])
        for member in tuple(self._rooms.get(room, {}).values()):
            if member.id != skip and earlier.isdisjoint(self._memberships.get(member.id, ())):
                member.send_frame(frame)

    # -- background tasks -----------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        """Keep this node alive in Redis, re-register it when needed, purge dead nodes."""
        redis = self._redis
        assert redis is not None
        failures = 0
        while not self._closing:
            try:
                budget = self.operation_timeout * (2 + len(self._memberships) // 10_000)
                await _within(self._heartbeat(redis), budget)
            except Exception as exc:  # a background task must outlive any failure
                if self._closing:
                    return
                self._commands_failed(exc)
                delay = self._delay(failures)
                failures += 1
            else:
                failures = 0
                delay = self.heartbeat_interval
                self._commands_ok.set()
                self._outage.recovered("command")
            self._wake_heartbeat.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake_heartbeat.wait(), delay)

    async def _heartbeat(self, redis: Redis) -> None:
        names = self._names
        ttl = max(1, round(self.node_ttl * 1000))
        previous = await redis.set(names.heartbeat(self.node_id), b"1", px=ttl, get=True)
        if previous is None or self._dirty or not self._commands_ok.is_set():
            await self._resync(redis)
        nodes = {_text(raw) for raw in await redis.smembers(names.nodes)}
        nodes.discard(self.node_id)
        if nodes:
            await self._purge_dead(redis, nodes - await self._alive(redis, nodes))

    async def _resync(self, redis: Redis) -> None:
        """Rewrite this node's memberships from the local index, in one transaction."""
        names = self._names
        ttl = max(1, round(self.node_ttl * 1000))
        assert self._purge is not None
        while True:
            self._dirty = False
            self._syncing = True
            try:
                pipe = redis.pipeline(transaction=True)
                pipe.set(names.heartbeat(self.node_id), b"1", px=ttl)
                await self._purge(args=[names.prefix, self.node_id, "1"], client=pipe)
                pipe.sadd(names.nodes, self.node_id)
                ids = list(self._memberships)
                if ids:
                    pipe.sadd(names.conns(self.node_id), *ids)
                for member_id, rooms in self._memberships.items():
                    pipe.set(names.owner(member_id), self.node_id)
                    if rooms:
                        pipe.sadd(names.rooms(member_id), *rooms)
                for room, members in self._rooms.items():
                    pipe.sadd(names.members(room), *map(self._entry, members))
                await pipe.execute()
            finally:
                self._syncing = False
            if not self._dirty:
                return

    async def _subscriber_loop(self) -> None:
        """Hold one pub/sub connection; on any failure, reconnect with back-off and resubscribe."""
        redis = self._redis
        assert redis is not None
        failures = 0
        while not self._closing:
            pubsub = redis.pubsub()
            try:
                await _within(cast(Any, pubsub).connect(), self.operation_timeout)
                self._pubsub = pubsub
                channels = [self._names.all, *map(self._names.channel, self._rooms)]
                await pubsub.subscribe(*channels)
                await self._listen(pubsub, channels[0].encode())
            except Exception as exc:  # a background task must outlive any failure
                if self._closing:
                    return
                if self._subscribed.is_set():
                    failures = 0
                self._outage.failed("pub/sub", exc)
            finally:
                self._pubsub = None
                self._subscribed.clear()
                for future in self._confirmations.values():
                    if not future.done():
                        future.set_result(None)
                self._confirmations.clear()
                with contextlib.suppress(*_REDIS_ERRORS):
                    await cast(Any, pubsub).aclose()
            await asyncio.sleep(self._delay(failures))
            failures += 1

    async def _listen(self, pubsub: PubSub, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        pinged = False
        while not self._closing:
            message = await pubsub.get_message(timeout=min(1.0, self.heartbeat_interval))
            now = loop.time()
            if message is None:
                silent = now - last_heard
                if silent > self.heartbeat_interval + self.operation_timeout and pinged:
                    raise ConnectionError("the pub/sub connection stopped answering pings")
                if silent > self.heartbeat_interval and not pinged:
                    await pubsub.ping()
                    pinged = True
                continue
            last_heard = now
            pinged = False
            kind = message["type"]
            if kind == "message":
                try:
                    self._receive(message["channel"], message["data"])
                except Exception:
                    logger.exception("delivering a message from Redis failed")
            elif kind == "subscribe":
                channel = message["channel"]
                future = self._confirmations.pop(channel, None)
                if future is not None and not future.done():
                    future.set_result(None)
                if channel == first and not self._subscribed.is_set():
                    self._subscribed.set()
                    self._outage.recovered("pub/sub")

    async def _publisher_loop(self) -> None:
        """Drain the outbox in pipelined batches, in order, while the command link works."""
        redis = self._redis
        assert redis is not None
        while not (self._closing and self._idle.is_set()):
            await self._outbox_ready.wait()
            await self._commands_ok.wait()
            batch = self._take_batch()
            if not batch:
                self._outbox_ready.clear()
                self._overflowing = False
                self._idle.set()
                continue
            pipe = redis.pipeline(transaction=False)
            for channel, data in batch:
                pipe.publish(channel, data)
            try:
                await _within(pipe.execute(), self.operation_timeout)
            except Exception as exc:  # a background task must outlive any failure
                self._outage.dropped += len(batch)  # at most once: a batch is never resent
                self._commands_failed(exc)

    def _take_batch(self) -> list[tuple[str, bytes]]:
        outbox = self._outbox
        oldest = time.monotonic() - self.pending_timeout
        batch: list[tuple[str, bytes]] = []
        while outbox and len(batch) < _PUBLISH_BATCH:
            queued, channel, data = outbox.popleft()
            if queued >= oldest:
                batch.append((channel, data))
            else:
                self._outage.dropped += 1
        return batch

    # -- helpers ------------------------------------------------------------------------------

    def _enqueue(self, channel: str, data: bytes) -> None:
        outbox = self._outbox
        if len(outbox) == outbox.maxlen:
            self._outage.dropped += 1
            if not self._overflowing and not self._outage.active:
                logger.warning(
                    "Redis publish queue full (%d messages); dropping the oldest", outbox.maxlen
                )
            self._overflowing = True
        outbox.append((time.monotonic(), channel, data))
        self._outbox_ready.set()
        self._idle.clear()

    def _entry(self, member_id: str) -> str:
        return f"{self.node_id}:{member_id}"

    def _delay(self, failures: int) -> float:
        delays = self.reconnect_delays
        return delays[min(failures, len(delays) - 1)]

    def _commands_failed(self, exc: BaseException) -> None:
        self._commands_ok.clear()
        self._dirty = True
        self._outage.failed("command", exc)
        self._wake_heartbeat.set()

    async def _write(self, queue_commands: Callable[[Any], object]) -> None:
        """Apply a membership change in Redis now, or mark it for the next resync."""
        redis = self._redis
        if redis is None or self._syncing or not self._commands_ok.is_set():
            self._dirty = True
            return
        pipe = redis.pipeline(transaction=True)
        queue_commands(pipe)
        try:
            await _within(pipe.execute(), self.operation_timeout)
        except _REDIS_ERRORS as exc:
            self._commands_failed(exc)

    async def _watch(self, rooms: Iterable[str]) -> None:
        """Subscribe to the channels of rooms that just got their first local member.

        Waits for Redis to confirm (`operation_timeout` at most), so that a message published
        after `join` returns reaches the new member.
        """
        pubsub = self._pubsub
        if pubsub is None:
            return  # the subscriber subscribes to every local room when it reconnects
        loop = asyncio.get_running_loop()
        channels = [self._names.channel(room) for room in rooms]
        waiting = []
        for channel in channels:
            future = self._confirmations.get(channel.encode())
            if future is None:
                future = self._confirmations[channel.encode()] = loop.create_future()
            waiting.append(future)
        try:
            await pubsub.subscribe(*channels)
        except _REDIS_ERRORS:
            return  # the subscriber sees the broken connection and resubscribes
        await asyncio.wait(waiting, timeout=self.operation_timeout)

    async def _confirmed(self, room: str) -> None:
        """Wait for a subscription another join started, if Redis has not confirmed it yet."""
        future = self._confirmations.get(self._names.channel(room).encode())
        if future is not None:
            await asyncio.wait([future], timeout=self.operation_timeout)

    async def _unwatch(self, rooms: Sequence[str]) -> None:
        pubsub = self._pubsub
        if rooms and pubsub is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await pubsub.unsubscribe(*map(self._names.channel, rooms))

    async def _alive(self, redis: Redis, nodes: Iterable[str]) -> set[str]:
        nodes = list(nodes)
        if not nodes:
            return set()
        pipe = redis.pipeline(transaction=False)
        for node in nodes:
            pipe.exists(self._names.heartbeat(node))
        found = await _within(pipe.execute(), self.operation_timeout)
        return {node for node, exists in zip(nodes, found, strict=True) if exists}

    async def _purge_dead(self, redis: Redis, nodes: Iterable[str]) -> None:
        """Erase nodes whose heartbeat expired (checked again atomically inside Redis)."""
        assert self._purge is not None
        for node in nodes:
            try:
                erased = await _within(
                    self._purge(args=[self._names.prefix, node, "0"], client=redis),
                    self.operation_timeout,
                )
            except _REDIS_ERRORS as exc:
                self._commands_failed(exc)
                return
            if erased > 0:
                logger.info("erased %d connections of dead node %s from Redis", erased, node)

    async def _erase_self(self, redis: Redis) -> None:
        assert self._purge is not None
        await self._purge(args=[self._names.prefix, self.node_id, "1"], client=redis)
        await redis.delete(self._names.heartbeat(self.node_id))


class RedisEmitter:
    """Sends events to the rooms of a cluster from code that holds no connections.

    For scripts and worker processes: `await emitter.broadcast("news", data, to=["lobby"])`.
    Every connection is in the room named by its id, so `emit(event, payload, to=id)` (or
    `to=[connection_id]`) reaches one.
    Raises redis.exceptions.RedisError (or TimeoutError) when Redis cannot take a message.
    """

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str = "microsockets",
        codec: Codec = DEFAULT,
        timeout: float = 5.0,
        max_connections: int = 8,
        redis_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.node_id = uuid.uuid4().hex
        self.timeout = timeout
        self._names = _Names(channel_prefix)
        self._protocol = Protocol(codec=codec)
        self._redis = _client(url, timeout, max_connections, redis_options)

    async def broadcast(
        self,
        event: str,
        payload: JSON = "",
        to: str | Iterable[str] | None = None,
        skip: str | None = None,
    ) -> None:
        """Send an event to every member of the rooms `to` (None: everyone) but `skip`, once each.

        The same arguments as `Application.broadcast`.
        """
        check_event_name(event)
        await self.publish_frame(self._protocol.encode(event, payload), target_rooms(to), skip)

    async def emit(self, event: str, payload: JSON = "", *, to: str) -> None:
        """Send an event to the one connection whose id is `to`, wherever it is connected."""
        await self.broadcast(event, payload, to=(to,))

    async def publish_frame(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Publish an already-encoded frame: one message per target room."""
        names = self._names
        pipe = self._redis.pipeline(transaction=False)
        if to is None:
            pipe.publish(names.all, _pack(self.node_id, frame, None, skip))
        else:
            targets = _targets(to)
            if not targets:
                return
            data = _pack(self.node_id, frame, targets, skip)
            for room in targets:
                pipe.publish(names.channel(room), data)
        await _within(pipe.execute(), self.timeout)

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()

    async def __aenter__(self) -> RedisEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
