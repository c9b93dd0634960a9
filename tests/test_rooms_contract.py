"""One contract, every room manager: the in-memory default, a custom one, a cluster over a
transport written here, Redis (its module).

A manager under test is built by a factory in MANAGERS; other test modules add theirs.
"""

from __future__ import annotations

import asyncio
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
from microsockets.types import JSON

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import eventually  # noqa: E402


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

    def presence_frames(self) -> list[tuple[str, dict]]:
        """The presence frames in the inbox, in order: (event, payload)."""
        frames = [json.loads(frame) for frame in self.inbox]
        return [(f["event"], f["payload"]) for f in frames if f["event"].startswith("ms:presence")]

    def presence_seen(self, room: str) -> dict:
        """The presence of a room as a client rebuilds it from the frames (state, then diffs)."""
        seen: dict = {}
        for event, payload in self.presence_frames():
            if payload["room"] != room:
                continue
            if event == "ms:presence_state":
                seen = {}
            for member_id in payload["leaves"]:
                seen.pop(member_id, None)
            seen.update(payload["joins"])
        return seen


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
        self.presence: dict[str, dict[str, tuple[str, str]]] = {}  # room -> {id: (node, meta)}


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
        for room, entries in list(self.bus.presence.items()):
            for member_id in [m for m, (node, _) in entries.items() if node == self.node_id]:
                del entries[member_id]
            if not entries:
                del self.bus.presence[room]
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

    async def presence_put(self, member_id: str, room: str, meta: str) -> None:
        self.bus.presence.setdefault(room, {})[member_id] = (self.node_id, meta)

    async def presence_remove(self, member_id: str, rooms: Collection[str]) -> None:
        for room in rooms:
            entries = self.bus.presence.get(room, {})
            entries.pop(member_id, None)
            if not entries:
                self.bus.presence.pop(room, None)

    async def presence(self, room: str) -> dict[str, str]:
        found = self.bus.presence.get(room, {})
        return {m: meta for m, (node, meta) in found.items() if node != self.node_id}

    async def presence_count(self, room: str) -> int:
        return len(self.bus.presence.get(room, {}))


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

    async def track(self, member: Member, room: str, meta: str) -> None:
        await self.placed[member.id].track(member, room, meta)

    async def untrack(self, member: Member, room: str) -> None:
        await self.placed[member.id].untrack(member, room)

    def presence_counts(self, rooms: Callable[[str], bool]) -> None:
        self.first.presence_counts(rooms)
        self.second.presence_counts(rooms)

    async def presence(self, room: str) -> dict[str, JSON]:
        return await self.second.presence(room)

    def hold_presence(self, member_id: str, grace: float) -> bool:
        node = self.placed.get(member_id)
        return node is not None and node.hold_presence(member_id, grace)

    async def resume_presence(self, member: Member) -> bool:
        return await self.placed[member.id].resume_presence(member)


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


# Presence (docs/presence.md): every manager here but the custom one keeps it.


def _tracking(manager: BaseRoomManager) -> None:
    if isinstance(manager, ListRoomManager):
        pytest.skip("the custom manager keeps no presence (it is optional)")


async def settle(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Poll until the check holds: diffs are batched, and may cross nodes."""
    await eventually(check, timeout)  # type: ignore[arg-type]


def meta(**fields: str) -> str:
    return json.dumps(fields, separators=(",", ":"))


async def visible(manager: BaseRoomManager, connect: Connect, *names: str) -> list[FakeMember]:
    """Connections that joined room "r" with presence {"user": name}, once all see each other."""
    members = [await connect(name) for name in names]
    for member in members:
        await manager.join(member, "r")
        await manager.track(member, "r", meta(user=member.id))
    await settle(lambda: all(len(m.presence_seen("r")) == len(names) for m in members))
    return members


async def test_presence_join_with_meta_update_leave(manager, connect):
    _tracking(manager)
    a, b, c = [await connect(name) for name in "abc"]
    for member in (a, b, c):
        await manager.join(member, "r")
    await manager.track(a, "r", meta(user="ann"))
    await manager.track(b, "r", meta(user="bob"))
    both = {"a": {"user": "ann"}, "b": {"user": "bob"}}
    assert await manager.presence("r") == both
    await settle(lambda: a.presence_seen("r") == both == b.presence_seen("r"))
    assert c.presence_frames() == []  # a plain member neither sees nor is seen

    await manager.track(b, "r", meta(user="bobby"))
    await settle(lambda: a.presence_seen("r")["b"] == {"user": "bobby"})
    assert (await manager.presence("r"))["b"] == {"user": "bobby"}

    await manager.leave(b, "r")
    await settle(lambda: a.presence_seen("r") == {"a": {"user": "ann"}})
    assert await manager.presence("r") == {"a": {"user": "ann"}}
    await manager.untrack(a, "r")
    assert await manager.presence("r") == {}
    assert await manager.members("r") == {"a", "c"}  # untracking is not leaving
    assert c.presence_frames() == []


async def test_presence_disconnect_is_one_leave(manager, connect):
    _tracking(manager)
    a, b = await visible(manager, connect, "a", "b")
    await manager.disconnect(b)
    await settle(lambda: a.presence_seen("r") == {"a": {"user": "a"}})
    leaves = [p for e, p in a.presence_frames() if e == "ms:presence" and "b" in p["leaves"]]
    assert len(leaves) == 1
    assert await manager.presence("r") == {"a": {"user": "a"}}


async def test_presence_full_state_comes_before_any_diff(manager, connect):
    _tracking(manager)
    members = await visible(manager, connect, "m0", "m1", "m2", "m3")
    everyone = {m.id: {"user": m.id} for m in members}
    assert all(m.presence_seen("r") == everyone for m in members)
    for member in members:
        first, *rest = member.presence_frames()
        assert first[0] == "ms:presence_state"
        assert member.id in first[1]["joins"]  # its own entry is in its state
        assert all(event == "ms:presence" for event, _ in rest)


async def test_presence_needs_membership_and_stays_in_its_room(manager, connect):
    _tracking(manager)
    a, b = await connect("a"), await connect("b")
    await manager.track(a, "r", meta(user="a"))  # not a member: nothing happens
    assert await manager.presence("r") == {}
    await manager.join(a, "r")
    await manager.join(b, "other")
    await manager.track(a, "r", meta(user="a"))
    await manager.track(b, "other", meta(user="b"))
    await settle(lambda: a.presence_seen("r") == {"a": {"user": "a"}})
    assert all(p["room"] == "r" for _, p in a.presence_frames())
    assert all(p["room"] == "other" for _, p in b.presence_frames())


async def test_presence_counts_only(manager, connect):
    _tracking(manager)
    manager.presence_counts(lambda room: room.startswith("big"))
    a, b = await connect("a"), await connect("b")
    for member in (a, b):
        await manager.join(member, "big")
        await manager.track(member, "big", meta(user=member.id))
    await settle(lambda: [p for _, p in b.presence_frames()][-1:] == [{"room": "big", "count": 2}])
    assert b.presence_frames()[0] == ("ms:presence_state", {"room": "big", "count": 2})
    assert len(await manager.presence("big")) == 2  # the server still has every entry


async def test_presence_grace_then_resume_announces_nothing(manager, connect):
    _tracking(manager)
    a, b = await visible(manager, connect, "a", "b")
    both = {"a": {"user": "a"}, "b": {"user": "b"}}
    assert manager.hold_presence("a", 5.0)
    await manager.disconnect(a)
    assert await manager.presence("r") == both  # still present while it may resume
    again = FakeMember("a")
    await manager.connect(again)
    await manager.join(again, "r")
    assert await manager.resume_presence(again)
    await settle(lambda: again.presence_seen("r") == both)
    await asyncio.sleep(0.2)  # several batching intervals: nothing more may come
    assert b.presence_seen("r") == both
    assert not any("a" in p["leaves"] for _, p in b.presence_frames() if "leaves" in p)
    assert await manager.presence("r") == both
    assert not await manager.resume_presence(again)  # once only


async def test_presence_grace_that_expires_is_one_leave(manager, connect):
    _tracking(manager)
    a, b = await visible(manager, connect, "a", "b")
    assert manager.hold_presence("a", 0.1)
    assert not manager.hold_presence("nobody", 0.1)
    await manager.disconnect(a)
    await settle(lambda: b.presence_seen("r") == {"b": {"user": "b"}})
    assert await manager.presence("r") == {"b": {"user": "b"}}
    leaves = [p for e, p in b.presence_frames() if e == "ms:presence" and "a" in p["leaves"]]
    assert len(leaves) == 1
