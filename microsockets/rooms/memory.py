"""The default room manager: plain dictionaries, one process."""

from __future__ import annotations

from collections.abc import Collection

from .base import BaseRoomManager, Member


class MemoryRoomManager(BaseRoomManager):
    """Rooms held in this process. Subclass it to add a cross-process transport."""

    def __init__(self) -> None:
        self._connections: dict[str, Member] = {}
        self._rooms: dict[str, dict[str, Member]] = {}
        self._memberships: dict[str, set[str]] = {}

    async def connect(self, member: Member) -> None:
        self._connections[member.id] = member
        self._memberships[member.id] = set()
        self._add(member, member.id)

    async def disconnect(self, member: Member) -> None:
        self._connections.pop(member.id, None)
        for room in self._memberships.pop(member.id, ()):
            self._remove(member.id, room)

    async def join(self, member: Member, room: str) -> None:
        if member.id in self._memberships:
            self._add(member, room)

    async def leave(self, member: Member, room: str) -> None:
        rooms = self._memberships.get(member.id)
        if rooms is not None and room in rooms:
            rooms.discard(room)
            self._remove(member.id, room)

    async def members(self, room: str) -> set[str]:
        return set(self._rooms.get(room, ()))

    async def rooms_of(self, member_id: str) -> set[str]:
        return set(self._memberships.get(member_id, ()))

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        self.deliver(frame, to, skip)

    def deliver(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        """Queue a frame to the local members of `to`, each once, without awaiting."""
        if to is None:
            targets = self._connections
        elif len(to) == 1:
            targets = self._rooms.get(next(iter(to)), {})
        else:
            targets = {}
            for room in to:
                members = self._rooms.get(room)
                if members:
                    targets.update(members)
        skipped = None if skip is None else targets.get(skip)
        for member in tuple(targets.values()):  # identity, not ids: no attribute read per member
            if member is not skipped:
                member.send_frame(frame)

    @property
    def local_count(self) -> int:
        """How many connections this process holds."""
        return len(self._connections)

    def _add(self, member: Member, room: str) -> None:
        self._memberships[member.id].add(room)
        self._rooms.setdefault(room, {})[member.id] = member

    def _remove(self, member_id: str, room: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(member_id, None)
            if not members:
                del self._rooms[room]
