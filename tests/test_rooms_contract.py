"""One contract, every room manager: the in-memory default, a custom one, Redis (its module).

A manager under test is built by a factory in MANAGERS; other test modules add theirs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

import pytest

import microsockets
from microsockets.rooms import BaseRoomManager, Member, MemoryRoomManager
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


async def memory_manager() -> AsyncIterator[BaseRoomManager]:
    yield MemoryRoomManager()


async def list_manager() -> AsyncIterator[BaseRoomManager]:
    yield ListRoomManager()


MANAGERS: dict[str, Callable[[], AsyncIterator[BaseRoomManager]]] = {
    "memory": memory_manager,
    "custom": list_manager,
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
