"""The membership store in Redis: who is in which room on which node, and which nodes live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..index import RoomIndex
from ..outage import Outage
from ..presence import Presence
from .client import _REDIS_ERRORS, _reconnect_delay, _text, _within
from .wire import _PURGE, _Names

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package

_NODE_ID_LENGTH = 32


class Membership:
    """This node's memberships in Redis, its heartbeat, and the purge of dead nodes.

    A change is written at once while the command link works; otherwise it marks the node
    dirty, and the next heartbeat that succeeds rewrites every membership from the index.
    `commands_ok` is set while the command link works.
    """

    def __init__(
        self,
        names: _Names,
        outage: Outage,
        *,
        node_ttl: float,
        heartbeat_interval: float,
        operation_timeout: float,
        reconnect_delays: Sequence[float],
    ) -> None:
        self.node_id = ""
        self.node_ttl = node_ttl
        self.heartbeat_interval = heartbeat_interval
        self.operation_timeout = operation_timeout
        self.reconnect_delays = reconnect_delays
        self.commands_ok = asyncio.Event()
        self._names = names
        self._outage = outage
        self._index = RoomIndex()
        self._presence: Presence | None = None
        self._redis: Redis | None = None
        self._purge: AsyncScript | None = None
        self._wake = asyncio.Event()
        self._dirty = True
        self._syncing = False
        self._closing = False

    def open(self, redis: Redis, node_id: str, index: RoomIndex, presence: Presence) -> None:
        """Get ready for `run` in the running event loop."""
        self._redis, self.node_id, self._index = redis, node_id, index
        self._presence = presence
        self._purge = redis.register_script(_PURGE)
        self.commands_ok = asyncio.Event()
        self._wake = asyncio.Event()
        self._dirty = True
        self._closing = False

    def close(self) -> None:
        """Make `run` end rather than retry (the link stays usable for a last word)."""
        self._closing = True

    def detach(self) -> None:
        """Forget the client, which is being closed."""
        self._redis = self._purge = None
        self.commands_ok.clear()

    def failed(self, exc: BaseException) -> None:
        """A command failed: count the link as down and resync at the next heartbeat."""
        self.commands_ok.clear()
        self._dirty = True
        self._outage.failed("command", exc)
        self._wake.set()

    async def run(self) -> None:
        """Keep this node alive in Redis, re-register it when needed, purge dead nodes."""
        redis = self._redis
        assert redis is not None
        failures = 0
        while not self._closing:
            try:
                budget = self.operation_timeout * (2 + len(self._index.memberships) // 10_000)
                await _within(self._heartbeat(redis), budget)
            except Exception as exc:  # a background task must outlive any failure
                if self._closing:
                    return
                self.failed(exc)
                delay = _reconnect_delay(self.reconnect_delays, failures)
                failures += 1
            else:
                failures = 0
                delay = self.heartbeat_interval
                self.commands_ok.set()
                self._outage.recovered("command")
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # Writes.

    async def connected(self, member_id: str) -> None:
        names, entry = self._names, self._entry(member_id)
        await self._write(
            lambda pipe: (
                pipe.sadd(names.conns(self.node_id), member_id),
                pipe.set(names.owner(member_id), self.node_id),
                pipe.sadd(names.rooms(member_id), member_id),
                pipe.sadd(names.members(member_id), entry),
            )
        )

    async def disconnected(self, member_id: str, rooms: Collection[str]) -> None:
        names, entry = self._names, self._entry(member_id)

        def erase(pipe: Any) -> None:
            pipe.srem(names.conns(self.node_id), member_id)
            pipe.delete(names.owner(member_id), names.rooms(member_id))
            for room in rooms:
                pipe.srem(names.members(room), entry)

        await self._write(erase)

    async def joined(self, member_id: str, room: str) -> None:
        names, entry = self._names, self._entry(member_id)
        await self._write(
            lambda pipe: (
                pipe.sadd(names.rooms(member_id), room),
                pipe.sadd(names.members(room), entry),
            )
        )

    async def left(self, member_id: str, room: str) -> None:
        names, entry = self._names, self._entry(member_id)
        await self._write(
            lambda pipe: (
                pipe.srem(names.rooms(member_id), room),
                pipe.srem(names.members(room), entry),
            )
        )

    # Reads.

    async def members(self, room: str) -> set[str]:
        """Members on the other live nodes; none while Redis is away."""
        redis = self._redis
        if redis is None or not self.commands_ok.is_set():
            return set()
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
            self.failed(exc)
            return set()
        await self._purge_dead(redis, set(by_node) - alive)
        return {member_id for node in alive for member_id in by_node[node]}

    async def rooms_of(self, member_id: str) -> set[str]:
        """The rooms of a connection on another live node; empty if unknown or dead."""
        redis = self._redis
        if redis is None or not self.commands_ok.is_set():
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
            self.failed(exc)
            return set()
        if owner not in alive:
            await self._purge_dead(redis, {owner})
            return set()
        return {_text(raw) for raw in rooms_raw}

    async def presence_put(self, member_id: str, room: str, meta: str) -> None:
        names = self._names
        await self._write(
            lambda pipe: (
                pipe.hset(names.presence_of(self.node_id), f"{member_id}:{room}", b"1"),
                pipe.hset(names.presence(room), self._entry(member_id), meta),
            )
        )

    async def presence_remove(self, member_id: str, rooms: Collection[str]) -> None:
        names, entry = self._names, self._entry(member_id)

        def erase(pipe: Any) -> None:
            for room in rooms:
                pipe.hdel(names.presence_of(self.node_id), f"{member_id}:{room}")
                pipe.hdel(names.presence(room), entry)

        if rooms:
            await self._write(erase)

    async def presence(self, room: str) -> dict[str, str]:
        """Presence entries of the other live nodes; none while Redis is away."""
        redis = self._redis
        if redis is None or not self.commands_ok.is_set():
            return {}
        try:
            raw = await _within(redis.hgetall(self._names.presence(room)), self.operation_timeout)
            by_node: dict[str, dict[str, str]] = {}
            for field, meta in raw.items():
                entry = _text(field)
                node, member_id = entry[:_NODE_ID_LENGTH], entry[_NODE_ID_LENGTH + 1 :]
                if node != self.node_id:
                    by_node.setdefault(node, {})[member_id] = _text(meta)
            alive = await self._alive(redis, by_node)
        except _REDIS_ERRORS as exc:
            self.failed(exc)
            return {}
        await self._purge_dead(redis, set(by_node) - alive)
        return {member_id: meta for node in alive for member_id, meta in by_node[node].items()}

    async def presence_count(self, room: str) -> int:
        """Entries of the room in Redis (a dead node's count until it is purged)."""
        redis = self._redis
        if redis is None or not self.commands_ok.is_set():
            return len(self._presence.local(room)) if self._presence is not None else 0
        try:
            return int(
                await _within(redis.hlen(self._names.presence(room)), self.operation_timeout)
            )
        except _REDIS_ERRORS as exc:
            self.failed(exc)
            return 0

    async def erase_self(self) -> None:
        """Remove every trace of this node (a clean shutdown); silent if Redis is away."""
        redis, purge = self._redis, self._purge
        if redis is None or purge is None:
            return
        with contextlib.suppress(*_REDIS_ERRORS):
            await _within(self._erase(redis, purge), self.operation_timeout)

    # Internals.

    async def _heartbeat(self, redis: Redis) -> None:
        names = self._names
        ttl = max(1, round(self.node_ttl * 1000))
        previous = await redis.set(names.heartbeat(self.node_id), b"1", px=ttl, get=True)
        if previous is None or self._dirty or not self.commands_ok.is_set():
            await self._resync(redis)
            if previous is None and self._presence is not None:
                self._presence.announce_all()  # we may have been purged: undo those leaves
        nodes = {_text(raw) for raw in await redis.smembers(names.nodes)}
        nodes.discard(self.node_id)
        if nodes:
            await self._purge_dead(redis, nodes - await self._alive(redis, nodes))

    async def _resync(self, redis: Redis) -> None:
        """Rewrite this node's memberships from the local index, in one transaction."""
        names = self._names
        ttl = max(1, round(self.node_ttl * 1000))
        assert self._purge is not None
        memberships = self._index.memberships
        while True:
            self._dirty = False
            self._syncing = True
            try:
                pipe = redis.pipeline(transaction=True)
                pipe.set(names.heartbeat(self.node_id), b"1", px=ttl)
                await self._purge(args=[names.prefix, self.node_id, "1"], client=pipe)
                pipe.sadd(names.nodes, self.node_id)
                if memberships:
                    pipe.sadd(names.conns(self.node_id), *memberships)
                by_room: dict[str, list[str]] = {}
                for member_id, rooms in memberships.items():
                    pipe.set(names.owner(member_id), self.node_id)
                    if rooms:
                        pipe.sadd(names.rooms(member_id), *rooms)
                    for room in rooms:
                        by_room.setdefault(room, []).append(self._entry(member_id))
                for room, entries in by_room.items():
                    pipe.sadd(names.members(room), *entries)
                self._rewrite_presence(pipe)
                await pipe.execute()
            finally:
                self._syncing = False
            if not self._dirty:
                return

    def _rewrite_presence(self, pipe: Any) -> None:
        """Queue this node's presence entries, from the local book, on a resync."""
        own: dict[str, str] = {}
        for room, entries in (self._presence.entries if self._presence else {}).items():
            pipe.hset(
                self._names.presence(room),
                mapping={self._entry(member_id): meta for member_id, meta in entries.items()},
            )
            own.update({f"{member_id}:{room}": "1" for member_id in entries})
        if own:
            pipe.hset(self._names.presence_of(self.node_id), mapping=own)

    def _entry(self, member_id: str) -> str:
        return f"{self.node_id}:{member_id}"

    async def _write(self, queue_commands: Callable[[Any], object]) -> None:
        """Apply a membership change in Redis now, or mark it for the next resync."""
        redis = self._redis
        if redis is None or self._syncing or not self.commands_ok.is_set():
            self._dirty = True
            return
        pipe = redis.pipeline(transaction=True)
        queue_commands(pipe)
        try:
            await _within(pipe.execute(), self.operation_timeout)
        except _REDIS_ERRORS as exc:
            self.failed(exc)

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
                erased, lost = await _within(
                    self._purge(args=[self._names.prefix, node, "0"], client=redis),
                    self.operation_timeout,
                )
            except _REDIS_ERRORS as exc:
                self.failed(exc)
                return
            if erased > 0:
                logger.info("erased %d connections of dead node %s from Redis", erased, node)
            if self._presence is not None:
                for at in range(0, len(lost) - 2, 3):  # room, id, meta: leaves to announce
                    room, member_id, meta = (_text(value) for value in lost[at : at + 3])
                    self._presence.lost(room, {member_id: meta})

    async def _erase(self, redis: Redis, purge: AsyncScript) -> None:
        await purge(args=[self._names.prefix, self.node_id, "1"], client=redis)
        await redis.delete(self._names.heartbeat(self.node_id))
