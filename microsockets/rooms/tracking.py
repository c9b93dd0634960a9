"""The managers that keep a local index and presence: what memory and cluster share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from ..protocol import PRESENCE_STATE
from ..types import JSON
from .base import BaseRoomManager, Member
from .index import RoomIndex
from .presence import Presence, count_frame, decode_entries, state_frame


class TrackingManager(BaseRoomManager):
    """A manager with a local `index` and a `presence` book; subclasses store entries for the
    other processes through the three hooks at the end (memory: nowhere)."""

    def __init__(self, index: RoomIndex, presence_book: Presence) -> None:
        self.index = index
        """This process's connections and their rooms (`index.room_count`, ...)."""
        self.presence_book = presence_book
        """This process's presence entries and their watchers."""
        self._state_readers: dict[str, asyncio.Future[None]] = {}  # a shared read per room

    async def track(self, member: Member, room: str, meta: str) -> None:
        rooms = self.index.rooms_of(member.id)
        if rooms is None or room not in rooms or room == member.id:
            return
        book = self.presence_book
        book.put(member.id, room, meta)
        await self._stored(member.id, room, meta)
        if not book.watching(member.id, room):
            await self._start_watching(member, room)

    def presence_counts(self, rooms: Callable[[str], bool]) -> None:
        self.presence_book.counts_only = rooms

    async def untrack(self, member: Member, room: str) -> None:
        if self.presence_book.remove(member.id, room):
            await self._erased(member.id, (room,))

    async def presence(self, room: str) -> dict[str, JSON]:
        entries = await self._others(room)
        entries.update(self.presence_book.local(room))
        return decode_entries(entries.items())

    def hold_presence(self, member_id: str, grace: float) -> bool:
        async def expire() -> None:
            rooms = self.presence_book.remove_all(member_id)
            await self._erased(member_id, rooms)

        return self.presence_book.hold(member_id, grace, expire)

    async def resume_presence(self, member: Member) -> bool:
        book = self.presence_book
        if not book.cancel_hold(member.id):
            return False
        joined = self.index.rooms_of(member.id) or set()
        for room in book.rooms_of(member.id):
            if room in joined:
                await self._start_watching(member, room)
        return True

    async def _start_watching(self, member: Member, room: str) -> None:
        """Watch the room's diffs, and send the full state before any of them; returns once
        it is queued. Watchers that arrive together share one read of the state."""
        self.presence_book.watch(member, room)
        states = self._state_readers.get(room)
        if states is None:
            states = asyncio.ensure_future(self._send_states(room))
            self._state_readers[room] = states
        await asyncio.shield(states)

    async def _send_states(self, room: str) -> None:
        book = self.presence_book
        try:
            while waiting := book.waiting(room):
                if book.counts_only(room):
                    state = count_frame(PRESENCE_STATE, room, await book.count(room))
                else:
                    entries = await self._others(room)
                    entries.update(book.local(room))
                    state = state_frame(room, entries)
                for member in waiting:
                    book.started(member, room, state)
        finally:
            del self._state_readers[room]

    async def _forget_presence(self, member: Member) -> None:
        """What `disconnect` does to presence: every entry goes, unless held for a grace."""
        book = self.presence_book
        if not book.held(member.id):
            rooms = book.remove_all(member.id)
            if rooms:
                await self._erased(member.id, rooms)

    # What a subclass stores for the other processes.

    async def _stored(self, member_id: str, room: str, meta: str) -> None:
        """An entry was set here."""

    async def _erased(self, member_id: str, rooms: Collection[str]) -> None:
        """A connection's entries in these rooms were removed here."""

    async def _others(self, room: str) -> dict[str, str]:
        """The room's entries on the other live processes (encoded metadata)."""
        return {}
