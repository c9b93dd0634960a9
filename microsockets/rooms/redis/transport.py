"""RedisTransport: pub/sub for publications, sets for membership, one heartbeat per node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from ..outage import Outage
from ..publisher import Publisher
from ..transport import LocalNode, Transport
from .client import _REDIS_ERRORS, _client, _within
from .membership import Membership
from .subscriber import _Subscriber
from .wire import _Names

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package


class RedisTransport(Transport):
    """The Redis back-end of a cluster; RedisRoomManager documents the options."""

    def __init__(
        self,
        url: str,
        *,
        channel_prefix: str,
        node_ttl: float,
        heartbeat_interval: float,
        operation_timeout: float,
        max_pending: int,
        pending_timeout: float,
        reconnect_delays: Sequence[float],
        max_connections: int,
        redis_options: Mapping[str, Any] | None,
    ) -> None:
        self.url = url
        self.node_id = uuid.uuid4().hex
        self.operation_timeout = operation_timeout
        self.max_connections = max_connections
        self._pid = os.getpid()
        self._names = _Names(channel_prefix)
        self._redis_options = redis_options
        self._redis: Redis | None = None
        self._node: LocalNode | None = None
        self._tasks: list[asyncio.Task[None]] = []
        outage = self._outage = Outage("Redis", logger)
        self.publisher = Publisher(
            outage,
            logger,
            max_pending=max_pending,
            pending_timeout=pending_timeout,
            operation_timeout=operation_timeout,
        )
        self.membership = Membership(
            self._names,
            outage,
            node_ttl=node_ttl,
            heartbeat_interval=heartbeat_interval,
            operation_timeout=operation_timeout,
            reconnect_delays=reconnect_delays,
        )
        self.subscriber = _Subscriber(
            self._names,
            outage,
            heartbeat_interval=heartbeat_interval,
            operation_timeout=operation_timeout,
            reconnect_delays=reconnect_delays,
        )

    @property
    def channel_prefix(self) -> str:
        return self._names.prefix

    @property
    def commands_up(self) -> bool:
        """Whether the command link (membership, publishing) works."""
        return self.membership.commands_ok.is_set()

    @property
    def pubsub_up(self) -> bool:
        """Whether the pub/sub link (receiving) works."""
        return self.subscriber.subscribed.is_set()

    @property
    def available(self) -> bool:
        return self.commands_up and self.pubsub_up

    @property
    def pending(self) -> int:
        return self.publisher.pending

    @property
    def dropped(self) -> int:
        return self._outage.dropped_total

    @property
    def client(self) -> Redis | None:
        """The command client while started (recovery's stream and sessions use it)."""
        return self._redis

    @property
    def names(self) -> _Names:
        """The key and channel names under this transport's prefix."""
        return self._names

    async def start(self, node: LocalNode) -> None:
        """Connect and start the background tasks; waits `operation_timeout` at most.

        A Redis that cannot be reached does not stop the application: it runs locally and
        keeps trying.
        """
        if self._tasks:
            return
        if os.getpid() != self._pid:  # forked after construction: be a node of our own
            self.node_id = uuid.uuid4().hex
            self._pid = os.getpid()
        self._node = node
        redis = self._redis = _client(
            self.url, self.operation_timeout, self.max_connections, self._redis_options
        )
        self.membership.open(redis, self.node_id, node.index, node.presence_book)
        self.publisher.open()
        self.subscriber.open(node.index.rooms, node.receive)
        self._tasks = [
            asyncio.create_task(self.membership.run(), name="microsockets-redis-heartbeat"),
            asyncio.create_task(self.subscriber.run(redis), name="microsockets-redis-subscriber"),
            asyncio.create_task(
                self.publisher.run(
                    self._send_batch, self.membership.commands_ok, self.membership.failed
                ),
                name="microsockets-redis-publisher",
            ),
        ]
        ready = asyncio.gather(
            self.membership.commands_ok.wait(), self.subscriber.subscribed.wait()
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ready, self.operation_timeout)

    async def stop(self) -> None:
        """Publish what is queued (briefly), erase this node from Redis and disconnect."""
        if not self._tasks:
            return
        heartbeat, subscriber, publisher = self._tasks
        self._tasks = []
        commands_were_ok = self.commands_up
        self.membership.close()
        self.subscriber.close()
        for task in (heartbeat, subscriber):
            task.cancel()
        await self.publisher.close(commands_were_ok)
        publisher.cancel()
        await asyncio.gather(heartbeat, subscriber, publisher, return_exceptions=True)
        await self.membership.erase_self()
        await self._disconnect()

    async def abandon(self) -> None:
        """Stop at once without a word to Redis, as kill -9 would: the other nodes erase this
        one's memberships once its heartbeat expires (`node_ttl`)."""
        tasks, self._tasks = self._tasks, []
        self.membership.close()
        self.subscriber.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._disconnect()

    def publish(self, room: str | None, data: bytes) -> None:
        if self._tasks:
            self.publisher.enqueue(self._names.channel(room), data)

    async def subscribe(self, rooms: Collection[str]) -> None:
        """Subscribe to rooms whose first local member this is (the index already has it);
        for the others, wait for the subscription an earlier join started."""
        index = self._node.index if self._node is not None else None
        if index is None:
            return
        new = [room for room in rooms if index.room_size(room) == 1]
        await asyncio.gather(
            self.subscriber.watch(new),
            *(self.subscriber.confirmed(room) for room in rooms if room not in new),
        )

    async def unsubscribe(self, rooms: Collection[str]) -> None:
        await self.subscriber.unwatch(rooms)

    async def connected(self, member_id: str) -> None:
        await self.membership.connected(member_id)

    async def disconnected(self, member_id: str, rooms: Collection[str]) -> None:
        await self.membership.disconnected(member_id, rooms)

    async def joined(self, member_id: str, room: str) -> None:
        await self.membership.joined(member_id, room)

    async def left(self, member_id: str, room: str) -> None:
        await self.membership.left(member_id, room)

    async def members(self, room: str) -> set[str]:
        return await self.membership.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        return await self.membership.rooms_of(member_id)

    async def presence_put(self, member_id: str, room: str, meta: str) -> None:
        await self.membership.presence_put(member_id, room, meta)

    async def presence_remove(self, member_id: str, rooms: Collection[str]) -> None:
        await self.membership.presence_remove(member_id, rooms)

    async def presence(self, room: str) -> dict[str, str]:
        return await self.membership.presence(room)

    async def presence_count(self, room: str) -> int:
        return await self.membership.presence_count(room)

    async def _send_batch(self, batch: Sequence[tuple[str, bytes]]) -> None:
        redis = self._redis
        assert redis is not None
        pipe = redis.pipeline(transaction=False)
        for channel, data in batch:
            pipe.publish(channel, data)
        await _within(pipe.execute(), self.operation_timeout)

    async def _disconnect(self) -> None:
        redis, self._redis = self._redis, None
        self.membership.detach()
        if redis is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await redis.aclose()
        self.publisher.clear()
