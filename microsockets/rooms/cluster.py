"""ClusterRoomManager: the local index plus a transport to the other processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from .base import Member
from .envelope import PresenceEnvelope, envelope, unpack
from .index import RoomIndex
from .presence import Presence
from .tracking import TrackingManager
from .transport import Transport

logger = logging.getLogger(__name__)


class ClusterRoomManager(TrackingManager):
    """Rooms shared by every process whose transport reaches the same back-end.

    Local members get each broadcast before `broadcast` returns, without waiting for the
    transport; the other processes get one publication per broadcast.
    """

    def __init__(self, transport: Transport) -> None:
        super().__init__(RoomIndex(), Presence(self._announce, transport.presence_count))
        self.transport = transport

    @property
    def node_id(self) -> str:
        """This process's id in the cluster."""
        return self.transport.node_id

    async def start(self) -> None:
        await self.transport.start(self)

    async def stop(self) -> None:
        await self.presence_book.close()
        await self.transport.stop()

    async def connect(self, member: Member) -> None:
        self.index.add(member)
        transport = self.transport
        await asyncio.gather(transport.connected(member.id), transport.subscribe((member.id,)))

    async def disconnect(self, member: Member) -> None:
        rooms = self.index.remove(member.id)
        if rooms is None:
            return
        unwatched = [room for room in rooms if not self.index.has_room(room)]
        transport = self.transport
        present = (self._forget_presence(member),) if self.presence_book.has(member.id) else ()
        await asyncio.gather(
            transport.disconnected(member.id, rooms), transport.unsubscribe(unwatched), *present
        )

    async def join(self, member: Member, room: str) -> None:
        if not self.index.join(member, room):
            return
        transport = self.transport
        await asyncio.gather(transport.joined(member.id, room), transport.subscribe((room,)))

    async def leave(self, member: Member, room: str) -> None:
        if not self.index.leave(member.id, room):
            return
        unwatched = () if self.index.has_room(room) else (room,)
        transport = self.transport
        present = (self.untrack(member, room),) if self.presence_book.has(member.id) else ()
        await asyncio.gather(
            transport.left(member.id, room), transport.unsubscribe(unwatched), *present
        )

    async def members(self, room: str) -> set[str]:
        """Members on every live process; this process's own only, while the back-end is away."""
        return self.index.members(room) | await self.transport.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        """The rooms of a connection on any live process; empty if it is unknown."""
        local = self.index.rooms_of(member_id)
        return local if local is not None else await self.transport.rooms_of(member_id)

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Deliver locally now and queue one publication; never waits for the back-end."""
        self.index.deliver(frame, to, skip)
        found = envelope(self.transport.node_id, frame, to, skip)
        if found is not None:
            self.transport.publish(found.room, found.pack())

    def receive(self, data: bytes) -> None:
        """Deliver a publication of another process to the local members it targets."""
        try:
            found = unpack(data)
        except ValueError:
            logger.debug("ignored a publication that is not a microsockets envelope")
            return
        if found.node == self.transport.node_id:  # our own were delivered locally already
            return
        if isinstance(found, PresenceEnvelope):
            self.presence_book.deliver(found.room, found.frame)
        else:
            self.index.deliver(found.frame, found.targets, found.skip)

    def _announce(self, room: str, frame: str) -> None:
        self.transport.publish(room, PresenceEnvelope(self.transport.node_id, room, frame).pack())

    async def _stored(self, member_id: str, room: str, meta: str) -> None:
        await self.transport.presence_put(member_id, room, meta)

    async def _erased(self, member_id: str, rooms: Collection[str]) -> None:
        await self.transport.presence_remove(member_id, rooms)

    async def _others(self, room: str) -> dict[str, str]:
        return await self.transport.presence(room)
