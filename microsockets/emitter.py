"""Sending events to rooms: one implementation for the application and RedisEmitter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable

from .protocol import Protocol, target_rooms
from .types import JSON


class Emitter(ABC):
    """`broadcast` and `emit` of application events: encoded once, then `publish_frame`."""

    protocol: Protocol
    max_broadcast_rooms: int | None = None
    """Rooms one broadcast may name (None: any number)."""

    @abstractmethod
    async def publish_frame(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Send an already-encoded frame to the members of the rooms `to` (None: everyone)."""

    async def broadcast(
        self,
        event: str,
        payload: JSON = "",
        to: str | Iterable[str] | None = None,
        skip: str | None = None,
    ) -> None:
        """Send an event to each member of the rooms `to` (None: everyone) but `skip`, once."""
        rooms = target_rooms(to, self.max_broadcast_rooms)
        frame = self.protocol.encode_event(event, payload)
        await self.publish_frame(frame, rooms, skip)

    async def emit(self, event: str, payload: JSON = "", *, to: str) -> None:
        """Send an event to the one connection whose id is `to`, wherever it is connected."""
        await self.broadcast(event, payload, to=(to,))
