"""The local room index, sans I/O: which of this process's connections are in which room."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Set

from .base import Member


class RoomIndex:
    """Rooms of the connections held by this process, and delivery to them.

    Every room manager keeps one; a cluster manager adds a transport for the other
    processes. Each method that changes membership says whether anything changed, so the
    caller knows when a room got its first or lost its last local member.
    """

    __slots__ = ("_connections", "_delivered", "_memberships", "_rooms")

    def __init__(self) -> None:
        self._connections: dict[str, Member] = {}
        self._rooms: dict[str, dict[str, Member]] = {}
        self._memberships: dict[str, set[str]] = {}
        self._delivered: Callable[[int], None] | None = None

    def observe(self, delivered: Callable[[int], None]) -> None:
        """Call `delivered(recipients)` after each delivery (metrics count them this way)."""
        self._delivered = delivered

    def add(self, member: Member) -> None:
        """Register a connection; it is in the room named by its id from now on."""
        self._connections[member.id] = member
        self._memberships[member.id] = set()
        self.join(member, member.id)

    def remove(self, member_id: str) -> set[str] | None:
        """Forget a connection; the rooms it was in, or None if it was unknown."""
        if self._connections.pop(member_id, None) is None:
            return None
        rooms = self._memberships.pop(member_id)
        for room in rooms:
            self._remove(member_id, room)
        return rooms

    def join(self, member: Member, room: str) -> bool:
        """Add a registered connection to a room; False if unknown or already in it."""
        rooms = self._memberships.get(member.id)
        if rooms is None or room in rooms:
            return False
        rooms.add(room)
        self._rooms.setdefault(room, {})[member.id] = member
        return True

    def leave(self, member_id: str, room: str) -> bool:
        """Take a connection out of a room; False if it was not in it."""
        rooms = self._memberships.get(member_id)
        if rooms is None or room not in rooms:
            return False
        rooms.discard(room)
        self._remove(member_id, room)
        return True

    def deliver(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        """Queue a frame to the local members of `to` (None: all), each once, but `skip`."""
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
        if self._delivered is not None:  # one test per delivery, not per member
            self._delivered(len(targets) - (skipped is not None))

    # Reading.

    def members(self, room: str) -> set[str]:
        """The ids of the local connections in a room."""
        return set(self._rooms.get(room, ()))

    def rooms_of(self, member_id: str) -> set[str] | None:
        """The rooms of a local connection (its own-id room included), or None if unknown."""
        rooms = self._memberships.get(member_id)
        return None if rooms is None else set(rooms)

    def has_room(self, room: str) -> bool:
        """Whether some local connection is in the room."""
        return room in self._rooms

    def room_size(self, room: str) -> int:
        """How many local connections are in the room."""
        return len(self._rooms.get(room, ()))

    @property
    def connection_count(self) -> int:
        """How many connections this process holds."""
        return len(self._connections)

    @property
    def room_count(self) -> int:
        """How many rooms have a local member, the rooms named by connection ids included."""
        return len(self._rooms)

    @property
    def rooms(self) -> Set[str]:
        """A live view of the rooms that have a local member."""
        return self._rooms.keys()

    @property
    def memberships(self) -> Mapping[str, Set[str]]:
        """Each local connection's rooms (read it, do not change it): what a resync writes."""
        return self._memberships

    def _remove(self, member_id: str, room: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(member_id, None)
            if not members:
                del self._rooms[room]
