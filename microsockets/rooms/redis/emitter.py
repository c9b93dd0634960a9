"""RedisEmitter: sends events to a cluster's rooms from a script or worker with no connections."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ...codec import DEFAULT, Codec
from ...protocol import Protocol
from ...socket import target_rooms
from ...types import JSON
from .client import _client, _within
from .wire import _Names, _publications


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
        await self.publish_frame(
            self._protocol.encode_event(event, payload), target_rooms(to), skip
        )

    async def emit(self, event: str, payload: JSON = "", *, to: str) -> None:
        """Send an event to the one connection whose id is `to`, wherever it is connected."""
        await self.broadcast(event, payload, to=(to,))

    async def publish_frame(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Publish an already-encoded frame: one message per target room."""
        publications = _publications(self._names, self.node_id, frame, to, skip)
        if not publications:
            return
        pipe = self._redis.pipeline(transaction=False)
        for channel, data in publications:
            pipe.publish(channel, data)
        await _within(pipe.execute(), self.timeout)

    async def aclose(self) -> None:
        """Close the connections to Redis."""
        await self._redis.aclose()

    async def __aenter__(self) -> RedisEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
