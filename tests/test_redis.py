"""RedisRoomManager and RedisEmitter against a real redis-server, with fake members.

Each manager stands for one process (a node); several on one Redis make a cluster.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from microsockets.rooms.envelope import Envelope, PresenceEnvelope, unpack
from microsockets.rooms.redis import RedisEmitter, RedisRoomManager

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import RedisServer, eventually, redis_binary, running_redis  # noqa: E402
from tests.test_rooms_contract import FakeMember  # noqa: E402

pytest_plugins = ["tests.redis_server"]
pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

WAIT = 5.0
FAST = {
    "node_ttl": 1.0,
    "heartbeat_interval": 0.2,
    "operation_timeout": 0.5,
    "reconnect_delays": (0.02, 0.05, 0.1, 0.2),
}


def frame(event: str, payload: Any = "") -> str:
    return json.dumps({"event": event, "payload": payload}, separators=(",", ":"))


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = WAIT) -> None:
    """Poll until `check()` (plain or async) holds; fail after `timeout` seconds."""
    await eventually(check, timeout)


async def connected(node: RedisRoomManager, member_id: str, *rooms: str) -> FakeMember:
    """A fake connection `member_id` on `node`, joined to `rooms`."""
    member = FakeMember(member_id)
    await node.connect(member)
    for room in rooms:
        await node.join(member, room)
    return member


async def settle(sender: RedisRoomManager, *receivers: FakeMember) -> None:
    """Wait until every earlier message from `sender` has reached `receivers`.

    A barrier frame follows the same connection and the same order, so once it is in, any
    duplicate of an earlier message would be in too.
    """
    for member in receivers:
        await sender.broadcast(frame("barrier"), [member.id])
    await until(lambda: all("barrier" in m.events() for m in receivers))
    for member in receivers:
        member.inbox.remove(frame("barrier"))


Factory = Callable[..., Awaitable[RedisRoomManager]]


@pytest.fixture
async def cluster(redis_server: RedisServer, prefix: str) -> AsyncIterator[Factory]:
    """Makes started managers (nodes) on the session's Redis; stops them after the test."""
    managers: list[RedisRoomManager] = []

    async def make(url: str | None = None, ready: bool = True, **options: Any) -> RedisRoomManager:
        options = {**FAST, "channel_prefix": prefix, **options}
        manager = RedisRoomManager(url or redis_server.url, **options)
        managers.append(manager)
        await manager.start()
        if ready:  # start() waits operation_timeout at most; a slow machine may need longer
            await until(lambda: manager.redis_available)
        return manager

    yield make
    for manager in managers:
        await manager.stop()


async def test_broadcast_reaches_members_on_every_node_once(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice, bob = await connected(a, "alice", "lobby"), await connected(b, "bob", "lobby")

    await a.broadcast(frame("hello"), ["lobby"])

    assert alice.events() == ["hello"]  # local delivery does not wait for Redis
    await until(lambda: bob.events() == ["hello"])
    await settle(a, alice, bob)
    assert alice.events() == ["hello"]  # its own echo from Redis is skipped
    assert bob.events() == ["hello"]


async def test_member_of_several_target_rooms_gets_one_copy_on_any_node(
    cluster: Factory,
) -> None:
    a, b, c = await cluster(), await cluster(), await cluster()
    both_a = await connected(a, "both-a", "r1", "r2")
    both_b = await connected(b, "both-b", "r1", "r2", "r3")
    only_2 = await connected(b, "only-2", "r2")
    only_1 = await connected(c, "only-1", "r1")

    await a.broadcast(frame("from-a"), ["r2", "r1", "r2", "r3"])
    await c.broadcast(frame("from-c"), ["r3", "r1", "r2"])
    everyone = (both_a, both_b, only_2, only_1)
    await settle(a, *everyone)
    await settle(c, *everyone)

    for member in everyone:
        assert sorted(member.events()) == ["from-a", "from-c"], member.id


async def test_one_publication_per_broadcast_whatever_the_number_of_rooms(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    a, b = await cluster(), await cluster()
    members = [await connected(a if i % 2 else b, f"m{i}", "big", "other") for i in range(20)]
    redis = Redis.from_url(redis_server.url)
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{prefix}:*")
    await until(lambda: _next_is(pubsub, "psubscribe"))

    await a.broadcast(frame("once"), ["big", "other"])
    await a.broadcast(frame("one room"), ["big"])

    seen = []
    while len(seen) < 2:
        message = await pubsub.get_message(timeout=WAIT)
        assert message is not None
        if message["type"] == "pmessage":
            seen.append(message["channel"].decode())
    assert await pubsub.get_message(timeout=0.2) is None
    assert seen == [f"{prefix}:all", f"{prefix}:r:big"]
    await settle(a, *members)
    assert all(m.events() == ["once", "one room"] for m in members)
    await pubsub.aclose()
    await redis.aclose()


async def test_a_broadcast_to_many_long_rooms_costs_redis_the_frame_and_list_once(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    """Issue 12: 1,000 rooms of 256 characters once cost 248 MiB (the list in every copy)."""
    a, b = await cluster(), await cluster()
    rooms = [f"{i:04d}" + "r" * 252 for i in range(1000)]
    sender = await connected(a, "sender", *rooms)
    receiver = await connected(b, "receiver", rooms[-1])
    redis = Redis.from_url(redis_server.url)
    pubsub = redis.pubsub()
    await pubsub.psubscribe(f"{prefix}:*")
    await until(lambda: _next_is(pubsub, "psubscribe"))

    await a.broadcast(frame("hi"), rooms, skip=sender.id)

    sizes = []
    while message := await pubsub.get_message(timeout=0.3):
        if message["type"] == "pmessage":
            sizes.append(len(message["data"]))
    assert len(sizes) == 1
    assert sizes[0] < len(frame("hi")) + sum(len(room) + 3 for room in rooms) + 100
    await settle(a, receiver)
    assert receiver.events() == ["hi"]
    await pubsub.aclose()
    await redis.aclose()


async def _next_is(pubsub: Any, kind: str) -> bool:
    message = await pubsub.get_message(timeout=0.1)
    return message is not None and message["type"] == kind


async def test_emit_to_a_connection_id_on_another_node(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice, bob = await connected(a, "alice"), await connected(b, "bob")

    await a.broadcast(frame("direct"), [bob.id])

    await until(lambda: bob.events() == ["direct"])
    await settle(a, alice)
    assert alice.events() == []


async def test_skip_applies_on_every_node(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice = await connected(a, "alice", "room")
    bob, carol = await connected(b, "bob", "room"), await connected(b, "carol", "room")

    await a.broadcast(frame("not-bob"), ["room"], skip="bob")
    await a.broadcast(frame("everyone-but-carol"), None, skip="carol")

    await settle(a, alice, bob, carol)
    assert alice.events() == ["not-bob", "everyone-but-carol"]
    assert bob.events() == ["everyone-but-carol"]
    assert carol.events() == ["not-bob"]


async def test_broadcast_to_everyone_and_to_nobody(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice, bob = await connected(a, "alice"), await connected(b, "bob")

    await b.broadcast(frame("nobody"), [])
    await b.broadcast(frame("empty-room"), ["nobody-here"])
    await b.broadcast(frame("all"))

    await settle(b, alice, bob)
    assert alice.events() == ["all"]
    assert bob.events() == ["all"]


async def test_leave_and_disconnect_stop_delivery_across_nodes(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice, bob = await connected(a, "alice"), await connected(b, "bob")
    await b.join(bob, "room")
    await b.leave(bob, "room")
    await a.broadcast(frame("after-leave"), ["room"])
    await settle(a, bob)
    await b.disconnect(bob)
    await b.disconnect(bob)
    await a.broadcast(frame("after-disconnect"), [bob.id])
    await b.join(bob, "room")  # not connected: ignored
    await b.leave(bob, "room")

    await settle(a, alice)
    assert bob.events() == []
    assert await a.members(bob.id) == set()
    assert await a.members("room") == set()


async def test_members_and_rooms_of_answer_for_the_cluster(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    alice = await connected(a, "alice", "room")
    bob = await connected(b, "bob:with:colons", "room", "room:2")

    assert await a.members("room") == {"alice", "bob:with:colons"}
    assert await b.members("room") == {"alice", "bob:with:colons"}
    assert await a.members("room:2") == {"bob:with:colons"}
    assert await a.rooms_of(bob.id) == {"bob:with:colons", "room", "room:2"}
    assert await b.rooms_of(alice.id) == {"alice", "room"}
    assert await a.rooms_of("nobody") == set()

    await b.leave(bob, "room")
    assert await a.members("room") == {"alice"}
    await b.disconnect(bob)
    assert await a.rooms_of(bob.id) == set()
    assert await a.members("room:2") == set()


async def test_members_of_a_dead_node_expire(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    a, b = await cluster(), await cluster()
    await connected(a, "alice", "room")
    await connected(b, "bob", "room")
    assert await a.members("room") == {"alice", "bob"}

    await _crash(b)  # no clean-up: as after kill -9

    await until(lambda: _equals(a.members("room"), {"alice"}), timeout=b.node_ttl + WAIT)
    assert await a.rooms_of("bob") == set()
    redis = Redis.from_url(redis_server.url)
    left = await redis.keys(f"{prefix}:*{b.node_id}*")
    left += await redis.keys(f"{prefix}:*bob")
    await redis.aclose()
    assert left == []


async def _equals(value: Awaitable[set[str]], expected: set[str]) -> bool:
    return await value == expected


async def _crash(manager: RedisRoomManager) -> None:
    """Stop a manager the way kill -9 does: no goodbye to Redis."""
    await manager.transport.abandon()


async def test_external_emitter_reaches_rooms_and_ids(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    a, b = await cluster(), await cluster()
    alice, bob = await connected(a, "alice", "news"), await connected(b, "bob", "news")

    async with RedisEmitter(redis_server.url, channel_prefix=prefix) as emitter:
        await emitter.broadcast("headline", {"n": 1}, to=["news", "alice"])
        await emitter.broadcast("skipped", to="news", skip="alice")
        await emitter.emit("direct", [1, 2], to="bob")
        await emitter.broadcast("everyone")
        await emitter.broadcast("no-one", to=[])
        with pytest.raises(ValueError, match="reserved"):
            await emitter.broadcast("ms:ack", to=["news"])

    await until(lambda: len(alice.inbox) == 2 and len(bob.inbox) == 4)
    await settle(a, alice, bob)
    assert alice.inbox == [frame("headline", {"n": 1}), frame("everyone")]
    assert bob.inbox == [
        frame("headline", {"n": 1}),
        frame("skipped"),
        frame("direct", [1, 2]),
        frame("everyone"),
    ]


async def test_channel_prefixes_keep_applications_apart(
    cluster: Factory, redis_server: RedisServer
) -> None:
    a = await cluster(channel_prefix="app-one")
    b = await cluster(channel_prefix="app-two")
    alice, bob = await connected(a, "alice", "room"), await connected(b, "bob", "room")

    await a.broadcast(frame("one"), ["room"])
    await a.broadcast(frame("one-all"))
    await b.broadcast(frame("two"), ["room"])

    await settle(a, alice)
    await settle(b, bob)
    assert alice.events() == ["one", "one-all"]
    assert bob.events() == ["two"]
    assert await a.members("room") == {"alice"}


async def test_url_with_password_and_database(cluster: Factory) -> None:
    with running_redis("--requirepass", "s3cret") as server:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        a, b = await cluster(url), await cluster(url)
        await connected(a, "alice")
        bob = await connected(b, "bob")
        await a.broadcast(frame("secret"), ["bob"])
        await until(lambda: bob.events() == ["secret"])
        assert server.command("SELECT", "3").startswith("+OK")
        redis = Redis.from_url(url)
        assert await redis.exists(f"{a.channel_prefix}:node:{a.node_id}") == 1
        await redis.aclose()

        wrong = await cluster(f"redis://:wrong@127.0.0.1:{server.port}/3", ready=False)
        assert not wrong.redis_available  # refused, but the manager keeps running locally
        carol = await connected(wrong, "carol")
        await wrong.broadcast(frame("local"), ["carol"])
        assert carol.events() == ["local"]
        await wrong.stop()
        await a.stop()
        await b.stop()


async def test_foreign_messages_on_our_channels_are_ignored(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    a, b = await cluster(), await cluster()
    alice = await connected(a, "alice")
    redis = Redis.from_url(redis_server.url)
    for junk in (b"junk", b"[1]\n", b'["x","y",null,null]\n{}', b"\xff\xfe", b"[1,2,null,5]\nx"):
        await redis.publish(f"{prefix}:r:alice", junk)
    foreign = Envelope("someone", None, ["x"], frame("other-room")).pack()
    await redis.publish(f"{prefix}:r:alice", foreign)
    old_format = b'[1,"someone",null,["alice"]]\n' + frame("format 1").encode()
    await redis.publish(f"{prefix}:r:alice", old_format)
    await redis.aclose()

    await settle(b, alice)
    assert alice.events() == []
    assert a.redis_available


def test_envelope_format_round_trips() -> None:
    sent = Envelope("n" * 32, "s", ["a", "b\nc"], frame("e", {"k": "line\nbreak"}))
    assert unpack(sent.pack()) == sent
    assert unpack(Envelope("n", None, None, "{}").pack()) == ("n", None, None, "{}")
    for bad in (b"[1,1,null,null]\n{}", b"[2,1,null,null]\n{}", b"{}\n{}", b"[2,null,null]"):
        with pytest.raises(ValueError, match="microsockets publication"):
            unpack(bad)
    with pytest.raises(ValueError, match="malformed"):
        unpack(b'[2,"n",null,["a",3]]\n{}')
    diff = PresenceEnvelope("n" * 32, "r\nx", frame("ms:presence", {"room": "r\nx"}))
    assert unpack(diff.pack()) == diff
    with pytest.raises(ValueError, match="malformed"):
        unpack(b'[3,"n",7]\n{}')


def test_constructor_refuses_bad_settings() -> None:
    for options in (
        {"node_ttl": 0},
        {"operation_timeout": 0},
        {"max_pending": 0},
        {"reconnect_delays": ()},
        {"node_ttl": 1, "heartbeat_interval": 2},
        {"channel_prefix": ""},
        {"max_connections": 1},
    ):
        with pytest.raises(ValueError, match="must"):
            RedisRoomManager("redis://127.0.0.1:1/0", **options)


async def test_works_locally_before_start_and_after_stop(redis_server: RedisServer) -> None:
    manager = RedisRoomManager(redis_server.url, **FAST)
    alice = await connected(manager, "alice", "room")
    await manager.broadcast(frame("local"), ["room"])
    assert alice.events() == ["local"]
    assert await manager.members("room") == {"alice"}
    await manager.stop()  # never started: nothing to do
    await manager.start()
    await manager.start()  # idempotent
    assert await manager.members("room") == {"alice"}
    await manager.stop()
    await manager.broadcast(frame("still-local"), ["room"])
    assert alice.events() == ["local", "still-local"]


async def test_stop_erases_this_node_from_redis(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    a, b = await cluster(), await cluster()
    await connected(b, "bob", "room")
    assert await a.members("room") == {"bob"}
    await b.stop()
    assert await a.members("room") == set()
    redis = Redis.from_url(redis_server.url)
    assert await redis.keys(f"{prefix}:*{b.node_id}*") == []
    await redis.aclose()


# -- Redis going away --------------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "microsockets.rooms.redis" and r.levelno >= logging.WARNING
    ]


async def test_redis_restart_keeps_local_delivery_and_resumes(
    cluster: Factory, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "microsockets.rooms.redis")
    server = own_redis_server
    a, b = await cluster(server.url), await cluster(server.url)
    alice = await connected(a, "alice", "room")
    await connected(a, "carol", "room")
    bob = await connected(b, "bob", "room")

    server.stop()
    for i in range(200):
        await a.broadcast(frame(f"down-{i}"), ["room"], skip="carol")
    assert alice.events() == [f"down-{i}" for i in range(200)]
    await until(lambda: not a.redis_available and not b.redis_available)
    assert await a.members("room") == {"alice", "carol"}  # this node's view while Redis is away
    await a.join(alice, "joined-while-down")
    await b.disconnect(bob)
    await b.connect(bob)
    await b.join(bob, "room")
    await asyncio.sleep(0.3)  # several back-off rounds while the server is down
    down_warnings = _warnings(caplog)
    assert len(down_warnings) == 2  # one per node, however many messages and retries
    assert all("local delivery continues" in w for w in down_warnings)

    server.start()
    await until(lambda: a.redis_available and b.redis_available)
    await until(lambda: _equals(b.members("room"), {"alice", "bob", "carol"}))
    assert await b.rooms_of("alice") == {"alice", "room", "joined-while-down"}
    alice.inbox.clear()
    await a.broadcast(frame("back"), ["room"])
    await until(lambda: bob.events()[-1:] == ["back"])
    await settle(a, alice, bob)
    assert alice.events() == ["back"]
    assert a.transport.publisher.pending == 0
    recovered = [w for w in _warnings(caplog) if "reachable again" in w]
    assert len(recovered) == 2


async def test_publish_never_waits_and_the_queue_is_bounded(
    cluster: Factory, own_redis_server: RedisServer
) -> None:
    a = await cluster(own_redis_server.url, max_pending=100)
    alice = await connected(a, "alice")
    own_redis_server.stop()
    for i in range(5000):
        await a.broadcast(frame(f"m{i}"), ["alice", "elsewhere"])
    assert len(alice.inbox) == 5000
    assert a.transport.publisher.pending <= 100


async def test_start_with_redis_down_then_up(cluster: Factory) -> None:
    server = RedisServer(redis_binary())
    a = await cluster(server.url, ready=False)
    b: RedisRoomManager | None = None
    try:
        alice = await connected(a, "alice", "room")
        assert not a.redis_available
        server.start()
        await until(lambda: a.redis_available)
        b = await cluster(server.url)
        assert await b.members("room") == {"alice"}
        await b.broadcast(frame("hi"), ["room"])
        await until(lambda: alice.events() == ["hi"])
    finally:
        await a.stop()
        if b is not None:
            await b.stop()
        server.stop()


async def test_subscriber_killed_by_redis_reconnects(
    cluster: Factory, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis drops subscribers past their output buffer limit; CLIENT KILL does the same."""
    caplog.set_level(logging.INFO, "microsockets.rooms.redis")
    a, b = await cluster(own_redis_server.url), await cluster(own_redis_server.url)
    await connected(a, "alice")
    bob = await connected(b, "bob", "room")

    assert own_redis_server.command("CLIENT", "KILL", "TYPE", "pubsub") == ":2"

    async def delivered() -> bool:
        await a.broadcast(frame("ping"), ["room"])
        await asyncio.sleep(0.02)
        return "ping" in bob.events()

    await until(delivered)
    await until(lambda: a.redis_available and b.redis_available)
    warnings = _warnings(caplog)
    assert len([w for w in warnings if "pub/sub link failed" in w]) == 2
    assert len([w for w in warnings if "reachable again" in w]) == 2


async def test_output_buffer_limit_disconnect_recovers(
    cluster: Factory, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A real pub/sub output-buffer overflow: a stalled subscriber is dropped, then recovers."""
    caplog.set_level(logging.INFO, "microsockets.rooms.redis")
    server = own_redis_server
    assert server.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 64kb 0 0")
    a, b = await cluster(server.url), await cluster(server.url)
    stalled, flooded = threading.Event(), threading.Event()

    class StalledMember(FakeMember):
        """Its first frame blocks the whole event loop, as a slow consumer would."""

        def send_frame(self, frame: str) -> None:
            if not stalled.is_set():
                stalled.set()
                flooded.wait(WAIT)
            super().send_frame(frame)

    bob = StalledMember("bob")
    await b.connect(bob)
    channel = f"{a.channel_prefix}:r:bob"
    big = Envelope("x" * 32, None, ["bob"], frame("big", "x" * 60_000)).pack()

    def flood() -> None:
        stalled.wait(WAIT)
        client = SyncRedis.from_url(server.url)
        for _ in range(300):  # 18 MB while the subscriber's event loop is stuck
            client.publish(channel, big)
        client.close()
        flooded.set()

    thread = threading.Thread(target=flood)
    thread.start()
    client = Redis.from_url(server.url)
    await client.publish(channel, big)
    await client.aclose()
    await until(flooded.is_set)
    thread.join(WAIT)

    async def delivered() -> bool:
        await a.broadcast(frame("after"), ["bob"])
        await asyncio.sleep(0.02)
        return "after" in bob.events()

    await until(delivered)
    assert any("pub/sub link failed" in w for w in _warnings(caplog))


async def test_a_hung_redis_never_blocks_publishers(
    cluster: Factory, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP freezes Redis like a stuck server or a dead network path: nothing answers."""
    caplog.set_level(logging.INFO, "microsockets.rooms.redis")
    server = own_redis_server
    assert server.process is not None
    a, b = await cluster(server.url), await cluster(server.url)
    alice, bob = await connected(a, "alice", "room"), await connected(b, "bob", "room")

    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        for i in range(200):
            await a.broadcast(frame(f"m{i}"), ["room"])
        assert len(alice.inbox) == 200
        await a.join(alice, "frozen")  # gives up after operation_timeout
        assert await a.members("frozen") == {"alice"}

        def both_links_down(node: RedisRoomManager) -> bool:
            return not node.transport.commands_up and not node.transport.pubsub_up

        await until(lambda: both_links_down(a) and both_links_down(b))
    finally:
        os.kill(server.process.pid, signal.SIGCONT)

    await until(lambda: a.redis_available and b.redis_available)
    bob.inbox.clear()
    await a.broadcast(frame("thawed"), ["room"])
    await until(lambda: "thawed" in bob.events())
    assert await b.members("frozen") == {"alice"}
    warnings = _warnings(caplog)
    assert len([w for w in warnings if "link failed" in w]) == 2
    assert len([w for w in warnings if "reachable again" in w]) == 2


async def test_a_failing_member_does_not_stop_delivery_from_redis(
    cluster: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await cluster(), await cluster()
    broken = FakeMember("broken")

    def explode(frame: str) -> None:
        raise RuntimeError("boom")

    broken.send_frame = explode  # type: ignore[method-assign]
    await b.connect(broken)
    bob = await connected(b, "bob")
    await a.broadcast(frame("first"), ["broken"])
    await a.broadcast(frame("second"), ["bob"])

    await until(lambda: bob.events() == ["second"])
    assert "delivering a message from Redis failed" in caplog.text


async def test_stop_publishes_what_is_queued(cluster: Factory) -> None:
    a, b = await cluster(), await cluster()
    bob = await connected(b, "bob")
    for i in range(2000):
        await a.broadcast(frame(f"m{i}"), ["bob"])
    await a.stop()
    await until(lambda: len(bob.inbox) == 2000)
    assert bob.events() == [f"m{i}" for i in range(2000)]


async def test_resync_after_an_outage_keeps_a_member_without_rooms(
    cluster: Factory, own_redis_server: RedisServer
) -> None:
    a, b = await cluster(own_redis_server.url), await cluster(own_redis_server.url)
    alice = await connected(a, "alice")
    await a.leave(alice, "alice")  # the contract allows it; rooms_of is then empty
    await a.join(alice, "room")
    own_redis_server.stop()
    await a.leave(alice, "room")
    await until(lambda: not a.redis_available)
    own_redis_server.start()
    await until(lambda: a.redis_available)
    await until(lambda: _equals(b.members("room"), set()))
    assert await b.rooms_of("alice") == set()
    assert await a.rooms_of("alice") == set()


async def test_tls_url(cluster: Factory, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    with running_redis(tls_dir=tmp_path) as server:
        assert server.url.startswith("rediss://")
        a, b = await cluster(server.url), await cluster(server.url)
        await until(lambda: a.redis_available and b.redis_available)
        await connected(a, "alice")
        bob = await connected(b, "bob")
        await a.broadcast(frame("over-tls"), ["bob"])
        await until(lambda: bob.events() == ["over-tls"])
        assert await a.members("bob") == {"bob"}
        await a.stop()
        await b.stop()


async def test_a_room_joined_in_on_connect_is_shared_over_redis(
    cluster: Factory, redis_server: RedisServer, prefix: str
) -> None:
    """Regression (issue 11, defect 2): the join ran before the manager knew the connection."""
    import websockets

    import microsockets

    from .conftest import serve

    manager = RedisRoomManager(redis_server.url, **{**FAST, "channel_prefix": prefix})
    app = microsockets.Application(room_manager=manager)

    @app.hooks.on_connect
    async def subscribe(ws: microsockets.Connection) -> None:
        if isinstance(ws, microsockets.Socket):
            await ws.join("user:ann")
            await ws.emit("welcome", ws.id)

    other = await cluster()
    async with serve(app) as url, websockets.connect(url) as client:
        welcome = json.loads(await asyncio.wait_for(client.recv(), WAIT))
        assert welcome["event"] == "welcome"
        await until(lambda: _has(manager, "user:ann", welcome["payload"]))
        await until(lambda: _has(other, "user:ann", welcome["payload"]))
        await other.broadcast(frame("from another node", "hi"), ["user:ann"])
        reply = json.loads(await asyncio.wait_for(client.recv(), WAIT))
        assert reply == {"event": "from another node", "payload": "hi"}


async def _has(node: RedisRoomManager, room: str, member_id: str) -> bool:
    return member_id in await node.members(room)
