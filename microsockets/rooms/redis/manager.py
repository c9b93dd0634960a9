"""RedisRoomManager: rooms shared by every process on one Redis, delivered locally first."""

# Each process keeps its own connections in the in-memory index it inherits from
# MemoryRoomManager and delivers to them directly; Redis only carries what other processes
# need. docs/scaling.md describes the deployment, the limits and what an outage loses.

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..base import Member
from ..memory import MemoryRoomManager
from .client import _REDIS_ERRORS, _client, _reconnect_delay, _within
from .outage import _Outage
from .publisher import _Publisher
from .subscriber import _Subscriber
from .wire import _PURGE, _Names, _publications, _unpack

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package

DEFAULT_RECONNECT_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnection attempts; the last value repeats."""

_NODE_ID_LENGTH = 32


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
        self._tasks: list[asyncio.Task[None]] = []
        self._commands_ok = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._outage = _Outage()
        self._publisher = _Publisher(self._outage, max_pending, pending_timeout, operation_timeout)
        self._subscriber = _Subscriber(
            self._names,
            self._rooms.keys(),
            self._receive,
            self._outage,
            heartbeat_interval=self.heartbeat_interval,
            operation_timeout=operation_timeout,
            reconnect_delays=self.reconnect_delays,
        )
        self._dirty = True
        self._syncing = False
        self._closing = False
        self._purge: AsyncScript | None = None

    @property
    def channel_prefix(self) -> str:
        """The prefix of every Redis key and channel this manager uses."""
        return self._names.prefix

    @property
    def redis_available(self) -> bool:
        """Whether both links to Redis (commands and pub/sub) currently work."""
        return self._commands_ok.is_set() and self._subscriber.subscribed.is_set()

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
        self._commands_ok = asyncio.Event()
        self._wake_heartbeat = asyncio.Event()
        self._closing = False
        self._publisher.open()
        self._subscriber.open()
        redis = self._redis = _client(
            self.url, self.operation_timeout, self.max_connections, self._redis_options
        )
        self._purge = redis.register_script(_PURGE)
        self._dirty = True
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="microsockets-redis-heartbeat"),
            asyncio.create_task(self._subscriber.run(redis), name="microsockets-redis-subscriber"),
            asyncio.create_task(
                self._publisher.run(redis, self._commands_ok, self._commands_failed),
                name="microsockets-redis-publisher",
            ),
        ]
        ready = asyncio.gather(self._commands_ok.wait(), self._subscriber.subscribed.wait())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ready, self.operation_timeout)

    async def stop(self) -> None:
        """Publish what is queued (briefly), erase this node from Redis and disconnect."""
        if not self._tasks:
            return
        heartbeat, subscriber, publisher = self._tasks
        self._tasks = []
        self._closing = True
        self._subscriber.close()
        for task in (heartbeat, subscriber):
            task.cancel()
        await self._publisher.close(self._commands_ok.is_set())
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
        self._subscriber.subscribed.clear()
        self._publisher.outbox.clear()

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
            self._subscriber.watch([member.id]),
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

        unwatched = [room for room in rooms if room not in self._rooms]
        await asyncio.gather(self._write(erase), self._subscriber.unwatch(unwatched))

    async def join(self, member: Member, room: str) -> None:
        rooms = self._memberships.get(member.id)
        if rooms is None or room in rooms:
            return
        await super().join(member, room)
        names, subscriber = self._names, self._subscriber
        await asyncio.gather(
            self._write(
                lambda pipe: (
                    pipe.sadd(names.rooms(member.id), room),
                    pipe.sadd(names.members(room), self._entry(member.id)),
                )
            ),
            subscriber.watch([room]) if len(self._rooms[room]) == 1 else subscriber.confirmed(room),
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
            self._subscriber.unwatch([] if room in self._rooms else [room]),
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
        for channel, data in _publications(self._names, self.node_id, frame, to, skip):
            self._publisher.enqueue(channel, data)

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
                delay = _reconnect_delay(self.reconnect_delays, failures)
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

    # -- helpers ------------------------------------------------------------------------------

    def _entry(self, member_id: str) -> str:
        return f"{self.node_id}:{member_id}"

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
