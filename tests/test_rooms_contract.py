"""One contract, every room manager: the in-memory default, a custom one, a cluster over a
transport written here, Redis (its module).

A manager under test is built by a factory in MANAGERS; other test modules add theirs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

import pytest

import microsockets
from microsockets.rooms import (
    BaseRoomManager,
    ClusterRoomManager,
    LocalNode,
    Member,
    MemoryRoomManager,
    Transport,
)
from microsockets.testing import TestClient


class FakeMember:
    """A connection as managers see it: an id and an inbox."""

    def __init__(self, member_id: str) -> None:
        self.id = member_id
        self.inbox: list[str] = []

    def send_frame(self, frame: str) -> None:
        self.inbox.append(frame)

    def events(self) -> list[str]:
        """The event names of the JSON frames in the inbox, in order."""
        return [json.loads(frame)["event"] for frame in self.inbox]


class ListRoomManager(BaseRoomManager):
    """A deliberately different manager, written here to prove the contract is replaceable."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Member]] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def connect(self, member: Member) -> None:
        await self.join(member, member.id)

    async def disconnect(self, member: Member) -> None:
        self.pairs = [(room, m) for room, m in self.pairs if m.id != member.id]

    async def join(self, member: Member, room: str) -> None:
        if (room, member.id) not in {(r, m.id) for r, m in self.pairs}:
            self.pairs.append((room, member))

    async def leave(self, member: Member, room: str) -> None:
        self.pairs = [(r, m) for r, m in self.pairs if (r, m.id) != (room, member.id)]

    async def members(self, room: str) -> set[str]:
        return {m.id for r, m in self.pairs if r == room}

    async def rooms_of(self, member_id: str) -> set[str]:
        return {r for r, m in self.pairs if m.id == member_id}

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        targets = {m.id: m for r, m in self.pairs if to is None or r in to}
        for member_id, member in targets.items():
            if member_id != skip:
                member.send_frame(frame)


class Bus:
    """An in-process back-end that the nodes of one test share: what Redis is to processes."""

    def __init__(self) -> None:
        self.nodes: dict[str, BusTransport] = {}
        self.rooms: dict[str, dict[str, str]] = {}  # room -> {member id: node id}


class BusTransport(Transport):
    """A second back-end in a few lines: proof that a cluster needs only a transport."""

    def __init__(self, bus: Bus, node_id: str) -> None:
        self.bus, self.node_id = bus, node_id
        self.node: LocalNode | None = None
        self.subscriptions: set[str] = set()

    @property
    def available(self) -> bool:
        return self.node is not None

    async def start(self, node: LocalNode) -> None:
        self.node = node
        self.bus.nodes[self.node_id] = self

    async def stop(self) -> None:
        self.bus.nodes.pop(self.node_id, None)
        for members in self.bus.rooms.values():
            for member_id in [m for m, node in members.items() if node == self.node_id]:
                del members[member_id]
        self.node = None

    def publish(self, room: str | None, data: bytes) -> None:
        for other in list(self.bus.nodes.values()):
            if other.node is not None and (room is None or room in other.subscriptions):
                other.node.receive(data)

    async def subscribe(self, rooms: Collection[str]) -> None:
        self.subscriptions.update(rooms)

    async def unsubscribe(self, rooms: Collection[str]) -> None:
        self.subscriptions.difference_update(rooms)

    async def connected(self, member_id: str) -> None:
        await self.joined(member_id, member_id)

    async def disconnected(self, member_id: str, rooms: Collection[str]) -> None:
        for room in rooms:
            await self.left(member_id, room)

    async def joined(self, member_id: str, room: str) -> None:
        self.bus.rooms.setdefault(room, {})[member_id] = self.node_id

    async def left(self, member_id: str, room: str) -> None:
        self.bus.rooms.get(room, {}).pop(member_id, None)

    async def members(self, room: str) -> set[str]:
        found = self.bus.rooms.get(room, {})
        return {member_id for member_id, node in found.items() if node != self.node_id}

    async def rooms_of(self, member_id: str) -> set[str]:
        return {
            room
            for room, found in self.bus.rooms.items()
            if found.get(member_id) not in (None, self.node_id)
        }


class TwoNodes(BaseRoomManager):
    """Two cluster nodes on one bus seen as one manager: connections alternate between the
    nodes, broadcasts leave from the first, `members` and `rooms_of` answer from the second."""

    def __init__(self) -> None:
        bus = Bus()
        self.first = ClusterRoomManager(BusTransport(bus, "node-1"))
        self.second = ClusterRoomManager(BusTransport(bus, "node-2"))
        self.placed: dict[str, ClusterRoomManager] = {}

    async def start(self) -> None:
        await self.first.start()
        await self.second.start()

    async def stop(self) -> None:
        await self.first.stop()
        await self.second.stop()

    async def connect(self, member: Member) -> None:
        node = self.placed[member.id] = (self.first, self.second)[len(self.placed) % 2]
        await node.connect(member)

    async def disconnect(self, member: Member) -> None:
        node = self.placed.get(member.id)
        if node is not None:
            await node.disconnect(member)

    async def join(self, member: Member, room: str) -> None:
        await self.placed[member.id].join(member, room)

    async def leave(self, member: Member, room: str) -> None:
        await self.placed[member.id].leave(member, room)

    async def members(self, room: str) -> set[str]:
        return await self.second.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        return await self.second.rooms_of(member_id)

    async def broadcast(
        self, frame: str, to: Collection[str] | None = None, skip: str | None = None
    ) -> None:
        await self.first.broadcast(frame, to, skip)


async def memory_manager() -> AsyncIterator[BaseRoomManager]:
    yield MemoryRoomManager()


async def list_manager() -> AsyncIterator[BaseRoomManager]:
    yield ListRoomManager()


async def two_nodes() -> AsyncIterator[BaseRoomManager]:
    yield TwoNodes()


MANAGERS: dict[str, Callable[[], AsyncIterator[BaseRoomManager]]] = {
    "memory": memory_manager,
    "custom": list_manager,
    "cluster-over-a-test-transport": two_nodes,
}


@pytest.fixture(params=list(MANAGERS))
async def manager(request: pytest.FixtureRequest) -> AsyncIterator[BaseRoomManager]:
    factory = MANAGERS[request.param]
    async for made in factory():
        await made.start()
        try:
            yield made
        finally:
            await made.stop()


Connect = Callable[[str], Awaitable[FakeMember]]


@pytest.fixture
def connect(manager: BaseRoomManager) -> Connect:
    async def connect(member_id: str) -> FakeMember:
        member = FakeMember(member_id)
        await manager.connect(member)
        return member

    return connect


async def test_a_new_connection_is_in_its_own_room(manager, connect):
    await connect("a")
    assert await manager.rooms_of("a") == {"a"}
    assert await manager.members("a") == {"a"}


async def test_join_and_leave_are_idempotent(manager, connect):
    a = await connect("a")
    await manager.join(a, "r")
    await manager.join(a, "r")
    assert await manager.members("r") == {"a"}
    assert await manager.rooms_of("a") == {"a", "r"}
    await manager.leave(a, "r")
    await manager.leave(a, "r")
    await manager.leave(a, "never joined")
    assert await manager.members("r") == set()
    assert await manager.rooms_of("a") == {"a"}


async def test_disconnect_leaves_every_room_and_is_idempotent(manager, connect):
    a, b = await connect("a"), await connect("b")
    for room in ("r1", "r2"):
        await manager.join(a, room)
        await manager.join(b, room)
    await manager.disconnect(a)
    await manager.disconnect(a)
    assert await manager.members("r1") == {"b"}
    assert await manager.members("r2") == {"b"}
    assert await manager.rooms_of("a") == set()
    assert await manager.members("a") == set()


async def test_unknown_rooms_and_members_are_empty(manager):
    assert await manager.members("nobody") == set()
    assert await manager.rooms_of("nobody") == set()


async def test_broadcast_reaches_each_member_once_and_skips(manager, connect):
    a, b, c, d = [await connect(name) for name in "abcd"]
    await manager.join(a, "x")
    await manager.join(b, "x")
    await manager.join(b, "y")
    await manager.join(c, "y")
    await manager.broadcast("frame", ["x", "y"], skip="a")
    await manager.broadcast("only-y", ["y"])
    await manager.broadcast("to-nobody", ["empty"])
    assert (a.inbox, b.inbox, c.inbox, d.inbox) == (
        [],
        ["frame", "only-y"],
        ["frame", "only-y"],
        [],
    )


async def test_broadcast_to_none_reaches_everyone_and_to_an_id_one(manager, connect):
    a, b = await connect("a"), await connect("b")
    await manager.broadcast("all")
    await manager.broadcast("just-b", ["b"])
    assert (a.inbox, b.inbox) == (["all"], ["all", "just-b"])


async def test_a_custom_manager_serves_a_real_application():
    custom = ListRoomManager()
    app = microsockets.Application(room_manager=custom)

    @app.on("join")
    async def join(ws):
        await ws.join(ws.payload)
        await ws.broadcast("joined", ws.id, to=[ws.payload])

    async with TestClient(app) as client:
        assert custom.started
        async with client.connect() as a, client.connect() as b:
            await a.send("join", "room")
            await b.send("join", "room")
            assert (await a.receive())[0] == "joined"
            assert await custom.members("room") == {ws.id for ws in app.sockets()}
    assert custom.stopped
    assert custom.pairs == []


async def test_the_test_transport_carries_a_real_application_across_two_nodes():
    bus = Bus()
    apps = [
        microsockets.Application(room_manager=ClusterRoomManager(BusTransport(bus, name)))
        for name in ("node-1", "node-2")
    ]
    for app in apps:

        @app.on("join")
        async def join(ws):
            await ws.join(ws.payload)
            await ws.broadcast("joined", ws.id, to=[ws.payload])

    async with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        async with one.connect() as a, two.connect() as b:
            await a.send("join", "room")
            await b.send("join", "room")
            assert await a.receive() == ("joined", apps[1].sockets()[0].id)
            assert await apps[0].room_manager.members("room") == {
                ws.id for app in apps for ws in app.sockets()
            }
    assert bus.nodes == {}
    assert all(members == {} for members in bus.rooms.values())
