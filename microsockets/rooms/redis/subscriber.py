"""The subscriber: one pub/sub connection, kept subscribed to this node's channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..outage import Outage
from .client import _REDIS_ERRORS, _reconnect_delay, _within
from .wire import _Names

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package


class _Subscriber:
    """Listens to `P:all` and the channel of every local room, and hands each message to
    `receive(data)`; on any failure, reconnects with back-off and resubscribes.
    """

    def __init__(
        self,
        names: _Names,
        outage: Outage,
        *,
        heartbeat_interval: float,
        operation_timeout: float,
        reconnect_delays: Sequence[float],
    ) -> None:
        self.subscribed = asyncio.Event()
        self.heartbeat_interval = heartbeat_interval
        self.operation_timeout = operation_timeout
        self.reconnect_delays = reconnect_delays
        self._names = names
        self._rooms: Collection[str] = ()
        self._receive: Callable[[bytes], None] = _nowhere
        self._outage = outage
        self._pubsub: PubSub | None = None
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._closing = False

    def open(self, rooms: Collection[str], receive: Callable[[bytes], None]) -> None:
        """Get ready for `run` in the running event loop: `rooms` is a live view of the local
        rooms, read again at each reconnection."""
        self._rooms, self._receive = rooms, receive
        self.subscribed = asyncio.Event()
        self._closing = False

    def close(self) -> None:
        """Make `run` end, rather than reconnect, at its next failure."""
        self._closing = True

    async def run(self, redis: Redis) -> None:
        """Hold one pub/sub connection; on any failure, reconnect with back-off and resubscribe."""
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
                if self.subscribed.is_set():
                    failures = 0
                self._outage.failed("pub/sub", exc)
            finally:
                self._pubsub = None
                self.subscribed.clear()
                for future in self._confirmations.values():
                    if not future.done():
                        future.set_result(None)
                self._confirmations.clear()
                with contextlib.suppress(*_REDIS_ERRORS):
                    await cast(Any, pubsub).aclose()
            await asyncio.sleep(_reconnect_delay(self.reconnect_delays, failures))
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
                    self._receive(message["data"])
                except Exception:
                    logger.exception("delivering a message from Redis failed")
            elif kind == "subscribe":
                channel = message["channel"]
                future = self._confirmations.pop(channel, None)
                if future is not None and not future.done():
                    future.set_result(None)
                if channel == first and not self.subscribed.is_set():
                    self.subscribed.set()
                    self._outage.recovered("pub/sub")

    async def watch(self, rooms: Collection[str]) -> None:
        """Subscribe to the channels of rooms that just got their first local member.

        Waits for Redis to confirm (`operation_timeout` at most), so that a message published
        after `join` returns reaches the new member.
        """
        pubsub = self._pubsub
        if pubsub is None or not rooms:
            return  # `run` subscribes to every local room when it reconnects
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
            return  # `run` sees the broken connection and resubscribes
        await asyncio.wait(waiting, timeout=self.operation_timeout)

    async def confirmed(self, room: str) -> None:
        """Wait for a subscription another join started, if Redis has not confirmed it yet."""
        future = self._confirmations.get(self._names.channel(room).encode())
        if future is not None:
            await asyncio.wait([future], timeout=self.operation_timeout)

    async def unwatch(self, rooms: Collection[str]) -> None:
        pubsub = self._pubsub
        if rooms and pubsub is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await pubsub.unsubscribe(*map(self._names.channel, rooms))


def _nowhere(data: bytes) -> None:
    """The receiver of a subscriber that was never opened."""
