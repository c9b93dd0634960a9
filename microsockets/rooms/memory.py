"""The default room manager: the local index alone, one process."""

from __future__ import annotations

from collections.abc import Collection

from .base import Member
from .index import RoomIndex
from .presence import Presence
from .tracking import TrackingManager


class MemoryRoomManager(TrackingManager):
    """Rooms held in this process. For several processes, see ClusterRoomManager."""

    def __init__(self) -> None:
        super().__init__(RoomIndex(), Presence(_nobody_else))

    async def stop(self) -> None:
        await self.presence_book.close()

    async def connect(self, member: Member) -> None:
        self.index.add(member)

    async def disconnect(self, member: Member) -> None:
        self.index.remove(member.id)
        if self.presence_book.has(member.id):
            await self._forget_presence(member)

    async def join(self, member: Member, room: str) -> None:
        self.index.join(member, room)

    async def leave(self, member: Member, room: str) -> None:
        self.index.leave(member.id, room)
        if self.presence_book.has(member.id):
            await self.untrack(member, room)

    async def members(self, room: str) -> set[str]:
        return self.index.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        return self.index.rooms_of(member_id) or set()

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        self.index.deliver(frame, to, skip)


def _nobody_else(room: str, frame: str) -> None:
    """One process: there is no other to announce a diff to."""
