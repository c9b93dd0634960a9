"""Every limit of an application in one frozen value; docs/security.md gives the reasons."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The per-connection and per-process limits; `Application(**limits)` sets them."""

    max_message_size: int = 64 * 1024
    """Bytes of UTF-8 in one frame (after decompression); past it the connection closes 1009."""
    max_event_length: int = 256
    """Characters in an event name."""
    max_bad_frames: int = 10
    """Bad frames in a row before the connection closes with 1008."""
    send_queue_limit: int = MiB
    """Characters queued to one client before it is dropped with 1013."""
    max_rooms_per_connection: int = 1000
    """Rooms one connection may join, its own-id room aside."""
    max_room_length: int = 256
    """Characters in a room name."""
    max_presence_size: int = 1024
    """Characters of one presence entry's metadata, as JSON; past it `presence_too_large`."""
    max_broadcast_rooms: int = 1001
    """Rooms one broadcast may name: every room of a connection, its own-id room included."""
    max_connections: int | None = 20_000
    """Event connections per process; past it handshakes get HTTP 503."""
    rate_limit: float | None = 10_000.0
    """Frames per second per connection, on average."""
    rate_burst: float | None = None
    """Frames that may arrive at once after a quiet spell; None: `rate_limit`."""
    byte_rate_limit: float | None = None
    """Bytes per second per connection (off by default: docs/security.md says why)."""
    handler_timeout: float | None = 60.0
    """Seconds a handler may run before it is cancelled."""
    recovery_window: float | None = None
    """Seconds a lost connection's session waits for a reconnect to resume it; None: off."""
    recovery_max_messages: int = 1000
    """Missed frames a resumed session may recover; past it the session is not recovered."""

    def __post_init__(self) -> None:
        if self.rate_burst is None and self.rate_limit is not None:
            object.__setattr__(self, "rate_burst", self.rate_limit)
