"""RedisRoomManager: rooms shared by every process on one Redis, delivered locally first."""

# Each process keeps its own connections in its local index and delivers to them directly;
# the Redis transport only carries what other processes need. docs/scaling.md describes the
# deployment, the limits and what an outage loses.

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...recovery import SessionStore
from ...recovery.base import OnEnd
from ..cluster import ClusterRoomManager
from .recovery import RedisSessionStore
from .transport import RedisTransport

DEFAULT_RECONNECT_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reconnection attempts; the last value repeats."""


class RedisRoomManager(ClusterRoomManager):
    """Rooms shared by every process pointed at the same Redis and channel prefix.

    `url` picks the server, database, password and TLS (`rediss://`). A process whose
    heartbeat stops (kill -9, lost host) has its members dropped from `members()` and
    `rooms_of()` `node_ttl` seconds later at most. While Redis is away, members of this
    process still get every message sent from this process; messages to and from the
    others are lost (pub/sub is at-most-once), except that up to `max_pending` outgoing
    messages younger than `pending_timeout` seconds are published once Redis is back.
    """

    transport: RedisTransport

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
        if node_ttl <= 0 or operation_timeout <= 0 or max_pending < 1 or not reconnect_delays:
            raise ValueError(
                "node_ttl and operation_timeout must be positive, max_pending at least 1, "
                "and reconnect_delays non-empty"
            )
        if max_connections < 2:
            raise ValueError("max_connections must be at least 2 (one is held by pub/sub)")
        heartbeat = node_ttl / 3 if heartbeat_interval is None else heartbeat_interval
        if not 0 < heartbeat < node_ttl:
            raise ValueError("heartbeat_interval must be positive and shorter than node_ttl")
        self.url = url
        self.node_ttl = node_ttl
        self.heartbeat_interval = heartbeat
        self.operation_timeout = operation_timeout
        self.pending_timeout = pending_timeout
        self.reconnect_delays = tuple(reconnect_delays)
        self.max_connections = max_connections
        self.recovery: RedisSessionStore | None = None
        """Recovery's sessions and stream, once an application with recovery_window asked."""
        super().__init__(
            RedisTransport(
                url,
                channel_prefix=channel_prefix,
                node_ttl=node_ttl,
                heartbeat_interval=heartbeat,
                operation_timeout=operation_timeout,
                max_pending=max_pending,
                pending_timeout=pending_timeout,
                reconnect_delays=self.reconnect_delays,
                max_connections=max_connections,
                redis_options=redis_options,
            )
        )

    def session_store(self, window: float, max_messages: int, on_end: OnEnd) -> SessionStore:
        """Sessions and their log in Redis, so that another process can resume a session."""
        self.recovery = RedisSessionStore(self.transport, self.index, window, max_messages, on_end)
        return self.recovery

    async def start(self) -> None:
        await super().start()
        if self.recovery is not None:
            await self.recovery.start()

    async def stop(self) -> None:
        if self.recovery is not None:
            await self.recovery.stop()
        await super().stop()

    def hold_presence(self, member_id: str, grace: float) -> bool:
        """As for every manager, with the grace cut to `node_ttl`: a dead process's entries
        go within `node_ttl`, so a held one must not outlive that either."""
        return super().hold_presence(member_id, min(grace, self.node_ttl))

    @property
    def channel_prefix(self) -> str:
        """The prefix of every Redis key and channel this manager uses."""
        return self.transport.channel_prefix

    @property
    def redis_available(self) -> bool:
        """Whether both links to Redis (commands and pub/sub) currently work."""
        return self.transport.available
