"""The contract every room manager keeps: who is in which room, and delivery to them.

A manager is small on purpose (eight coroutines); tests/test_rooms_contract.py runs one
suite against every implementation, including one written inside the test. Presence (five
more, docs/presence.md) is optional: the built-in managers keep it, a custom one may not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from typing import Protocol

from ..recovery import MemorySessionStore, SessionStore
from ..recovery.base import OnEnd
from ..types import JSON


class Member(Protocol):
    """What a manager sees of a connection: its id and a way to queue a frame to it."""

    @property
    def id(self) -> str: ...

    def send_frame(self, frame: str) -> None:
        """Queue an encoded frame; never blocks (the connection buffers, or drops itself)."""


class BaseRoomManager(ABC):
    """Rooms and delivery. Every connection is a member of the room named by its own id."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Called once at application startup (open connections to a backend here)."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Called once at application shutdown."""

    @abstractmethod
    async def connect(self, member: Member) -> None:
        """Register a new connection; it joins the room named by its id."""

    @abstractmethod
    async def disconnect(self, member: Member) -> None:
        """Forget a connection: it leaves every room it was in. Idempotent."""

    @abstractmethod
    async def join(self, member: Member, room: str) -> None:
        """Add a connection to a room. Joining twice is the same as once."""

    @abstractmethod
    async def leave(self, member: Member, room: str) -> None:
        """Remove a connection from a room. Leaving a room one is not in does nothing."""

    @abstractmethod
    async def members(self, room: str) -> set[str]:
        """The ids of the connections in a room."""

    @abstractmethod
    async def rooms_of(self, member_id: str) -> set[str]:
        """The rooms a connection is in, its own-id room included; empty if unknown."""

    @abstractmethod
    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        """Deliver an encoded frame once to each member of the rooms `to` (None: everyone).

        A connection in several of the rooms gets it once; the connection `skip` not at all.
        """

    def session_store(self, window: float, max_messages: int, on_end: OnEnd) -> SessionStore:
        """Where recovery keeps sessions and their log: in this process by default (a
        manager whose processes share a back-end keeps them there)."""
        return MemorySessionStore(self.broadcast, window, max_messages, on_end)

    # Presence (optional): who is visible in a room, with metadata (docs/presence.md).

    async def track(self, member: Member, room: str, meta: str) -> None:
        """Show a member of `room` in its presence with `meta` (encoded JSON), or update it.

        The first time, the member gets the room's full state, then its diffs.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    def presence_counts(self, rooms: Callable[[str], bool]) -> None:
        """Send counts instead of entries in the rooms for which `rooms(room)` is true."""
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    async def untrack(self, member: Member, room: str) -> None:
        """Remove a member's entry from a room's presence (leaving the room does this)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    async def presence(self, room: str) -> dict[str, JSON]:
        """The entries of a room's presence on every live process: id -> metadata."""
        raise NotImplementedError(f"{type(self).__name__} keeps no presence")

    def hold_presence(self, member_id: str, grace: float) -> bool:
        """Keep a going connection's entries for `grace` seconds (a session that may resume);
        then they go, one leave each. Call it before `disconnect`. Whether it had entries
        (a manager that keeps no presence holds nothing)."""
        return False

    async def resume_presence(self, member: Member) -> bool:
        """A held session came back (rejoined to its rooms): keep its entries, announce
        nothing, send it each room's state again. Whether it was still held."""
        return False
