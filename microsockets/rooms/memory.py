"""The default room manager: the local index alone, one process."""

from __future__ import annotations

from collections.abc import Collection

from .base import BaseRoomManager, Member
from .index import RoomIndex


class MemoryRoomManager(BaseRoomManager):
    """Rooms held in this process. For several processes, see ClusterRoomManager."""

    def __init__(self) -> None:
        self.index = RoomIndex()
        """This process's connections and their rooms (`index.room_count`, ...)."""

    async def connect(self, member: Member) -> None:
        self.index.add(member)

    async def disconnect(self, member: Member) -> None:
        self.index.remove(member.id)

    async def join(self, member: Member, room: str) -> None:
        self.index.join(member, room)

    async def leave(self, member: Member, room: str) -> None:
        self.index.leave(member.id, room)

    async def members(self, room: str) -> set[str]:
        return self.index.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        return self.index.rooms_of(member_id) or set()

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        self.index.deliver(frame, to, skip)
