"""RedisEmitter: sends events to a cluster's rooms from a script or worker with no connections."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

from ...codec import DEFAULT, Codec
from ...emitter import Emitter
from ...protocol import Protocol
from ..envelope import envelope
from .client import _client, _within
from .wire import _Names


class RedisEmitter(Emitter):
    """Sends events to the rooms of a cluster from code that holds no connections.

    For scripts and worker processes: `await emitter.broadcast("news", data, to=["lobby"])`,
    with the same arguments as `Application.broadcast` and `emit`. Every connection is in the
    room named by its id, so `emit(event, payload, to=id)` reaches one.
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
        self.protocol = Protocol(codec=codec)
        self._names = _Names(channel_prefix)
        self._redis = _client(url, timeout, max_connections, redis_options)

    async def publish_frame(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Publish an already-encoded frame, once, and wait for Redis to take it."""
        found = envelope(self.node_id, frame, to, skip)
        if found is not None:
            await _within(
                self._redis.publish(self._names.channel(found.room), found.pack()), self.timeout
            )

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()

    async def __aenter__(self) -> RedisEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
