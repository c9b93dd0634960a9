"""The transport: what a cluster room manager needs from a back-end to span processes.

broadcaster's split: the local index (index.py) stays in each process and delivers to its
own connections; a transport only carries what the other processes need. A back-end (Redis
today; NATS or Postgres LISTEN/NOTIFY tomorrow) implements this class and nothing else.
tests/test_rooms_contract.py runs the room contract over one written inside the test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import Protocol

from .index import RoomIndex
from .presence import Presence


class LocalNode(Protocol):
    """What a transport sees of the process it serves."""

    @property
    def index(self) -> RoomIndex:
        """The local rooms: what to subscribe to, and what to write again after an outage."""

    @property
    def presence_book(self) -> Presence:
        """The local presence entries: what to write again after an outage, and where the
        leaves of a dead process's entries are announced once they are purged (`lost`)."""

    def receive(self, data: bytes) -> None:
        """Hand over a publication that arrived from another process."""


class Transport(ABC):
    """Publication, subscription and a membership store shared by the processes of a cluster.

    Delivery is at most once: what is lost in an outage is lost. Membership calls return
    once the store has the change, or after the transport's own timeout; none may raise for
    a back-end that is away (the transport logs that and catches up later).
    """

    node_id: str
    """This process's id in the cluster; a publication names the node that sent it."""

    @property
    @abstractmethod
    def available(self) -> bool:
        """Whether the back-end is reachable right now."""

    @property
    def pending(self) -> int:
        """Publications queued and not yet handed to the back-end (metrics read it)."""
        return 0

    @property
    def dropped(self) -> int:
        """Publications lost since the transport was made (metrics read it)."""
        return 0

    @abstractmethod
    async def start(self, node: LocalNode) -> None:
        """Connect, and from now on hand `node` what is published to its rooms."""

    @abstractmethod
    async def stop(self) -> None:
        """Send what is queued (briefly), forget this node's memberships, disconnect."""

    @abstractmethod
    def publish(self, room: str | None, data: bytes) -> None:
        """Queue a publication for the processes subscribed to `room` (None: every process).

        Never waits; a transport that is not started drops it.
        """

    @abstractmethod
    async def subscribe(self, rooms: Collection[str]) -> None:
        """Receive what is published to these rooms; returns once that holds."""

    @abstractmethod
    async def unsubscribe(self, rooms: Collection[str]) -> None:
        """Stop receiving what is published to rooms with no local member left."""

    @abstractmethod
    async def connected(self, member_id: str) -> None:
        """Record a new local connection (in the room named by its id)."""

    @abstractmethod
    async def disconnected(self, member_id: str, rooms: Collection[str]) -> None:
        """Erase a local connection that was in `rooms`."""

    @abstractmethod
    async def joined(self, member_id: str, room: str) -> None:
        """Record that a local connection joined a room."""

    @abstractmethod
    async def left(self, member_id: str, room: str) -> None:
        """Record that a local connection left a room."""

    @abstractmethod
    async def members(self, room: str) -> set[str]:
        """The ids of the room's members on the other live processes (empty if unknown)."""

    @abstractmethod
    async def rooms_of(self, member_id: str) -> set[str]:
        """The rooms of a connection held by another live process (empty if unknown)."""

    # Presence entries (docs/presence.md): metadata is stored as encoded JSON text.

    @abstractmethod
    async def presence_put(self, member_id: str, room: str, meta: str) -> None:
        """Record a local connection's presence entry in a room (new, or an update)."""

    @abstractmethod
    async def presence_remove(self, member_id: str, rooms: Collection[str]) -> None:
        """Erase a local connection's presence entries in these rooms."""

    @abstractmethod
    async def presence(self, room: str) -> dict[str, str]:
        """The room's entries on the other live processes, id -> metadata (empty if unknown)."""

    @abstractmethod
    async def presence_count(self, room: str) -> int:
        """How many entries the room has in the whole cluster (for counts-only rooms)."""
