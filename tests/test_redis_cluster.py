"""Two uvicorn processes of one app sharing Redis, with real WebSocket clients on each.

The processes run `cluster_app` below (`uvicorn --factory tests.test_redis_cluster:cluster_app`),
configured through environment variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

import microsockets
from microsockets.rooms.redis import RedisEmitter, RedisRoomManager

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import RedisServer, eventually, free_port  # noqa: E402

pytest_plugins = ["tests.redis_server"]
pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0
NODE_TTL = 1.0


def cluster_app() -> microsockets.Application:
    """The app both processes serve; MS_REDIS_URL and MS_REDIS_PREFIX pick the cluster."""
    manager = RedisRoomManager(
        os.environ["MS_REDIS_URL"],
        channel_prefix=os.environ["MS_REDIS_PREFIX"],
        node_ttl=float(os.environ.get("MS_NODE_TTL", NODE_TTL)),
        heartbeat_interval=0.2,
        operation_timeout=float(os.environ.get("MS_OPERATION_TIMEOUT", 0.5)),
        reconnect_delays=(0.05, 0.1, 0.2),
    )
    app = microsockets.Application(room_manager=manager)

    @app.on("whoami")
    async def whoami(ws: microsockets.Socket) -> dict[str, Any]:
        return {"id": ws.id, "pid": os.getpid()}

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(ws.payload)
        return "ok"

    @app.on("leave")
    async def leave(ws: microsockets.Socket) -> str:
        await ws.leave(ws.payload)
        return "ok"

    @app.on("say")
    async def say(ws: microsockets.Socket) -> str:
        await ws.broadcast(
            "said", ws.payload["text"], to=ws.payload["to"], skip_self=ws.payload["skip_self"]
        )
        return "ok"

    @app.on("tell")
    async def tell(ws: microsockets.Socket) -> str:
        await app.emit("told", ws.payload["text"], to=ws.payload["to"])
        return "ok"

    @app.on("members")
    async def members(ws: microsockets.Socket) -> list[str]:
        return sorted(await app.room_manager.members(ws.payload))

    @app.on("present")
    async def present(ws: microsockets.Socket) -> str:
        await ws.join(ws.payload["room"], presence=ws.payload["meta"])
        return ws.id

    @app.on("presence")
    async def presence(ws: microsockets.Socket) -> Any:
        return await app.presence(ws.payload)

    @app.on("rooms_of")
    async def rooms_of(ws: microsockets.Socket) -> list[str]:
        return sorted(await app.room_manager.rooms_of(ws.payload))

    return app


class Node:
    """One uvicorn process of `cluster_app`."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        env = {
            **os.environ,
            "MS_REDIS_URL": redis_url,
            "MS_REDIS_PREFIX": prefix,
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.test_redis_cluster:cluster_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.02)
        raise RuntimeError("uvicorn did not start listening")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown, nothing erased from Redis
        self.process.wait(5)


class Client:
    """A WebSocket client speaking the microsockets protocol (websockets library)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[str, Any]] = []
        self._ids = itertools.count(1)
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._reader = asyncio.create_task(self._read())
        self.id = ""

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for text in self.ws:
                frame = json.loads(text)
                future = self._acks.pop(frame.get("id", 0), None)
                if future is not None:
                    future.set_result(frame)
                else:
                    self.events.append((frame["event"], frame["payload"]))

    async def request(self, event: str, payload: Any = "") -> Any:
        ack_id = next(self._ids)
        future = self._acks[ack_id] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps({"event": event, "payload": payload, "id": ack_id}))
        frame = await asyncio.wait_for(future, WAIT)
        assert frame["event"] == "ms:ack", frame
        return frame["payload"]

    def got(self, event: str) -> list[Any]:
        return [payload for name, payload in self.events if name == event]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    await eventually(check, timeout)


StartNodes = Callable[[RedisServer], list[Node]]
OpenClient = Callable[[Node], Awaitable[Client]]


@pytest.fixture
def start_nodes(prefix: str) -> Iterator[StartNodes]:
    """Starts two uvicorn processes on a Redis, in this test's prefix; stops (or reaps) them."""
    nodes: list[Node] = []

    def start(server: RedisServer) -> list[Node]:
        pair = [Node(server.url, prefix), Node(server.url, prefix)]
        nodes.extend(pair)
        for node in pair:
            node.wait_ready()
        return pair

    yield start
    for node in nodes:
        node.stop()


@pytest.fixture
async def open_client() -> AsyncIterator[OpenClient]:
    clients: list[Client] = []

    async def open_client(node: Node) -> Client:
        client = Client(await connect(node.url, open_timeout=WAIT))
        client.id = (await client.request("whoami"))["id"]
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.close()


async def test_two_processes_act_as_one_server(
    start_nodes: StartNodes, open_client: OpenClient, redis_server: RedisServer, prefix: str
) -> None:
    a, b = start_nodes(redis_server)
    a1, a2, b1, b2 = [await open_client(node) for node in (a, a, b, b)]
    for client in (a1, b1, b2):
        assert await client.request("join", "room") == "ok"
    await b2.request("join", "other")

    await until(lambda: _members_are(a2, "room", {a1.id, b1.id, b2.id}))
    assert await a1.request("rooms_of", b2.id) == sorted([b2.id, "room", "other"])

    # Room broadcast from one process reaches members on both, skip_self honoured.
    await a1.request("say", {"text": "hi", "to": ["room"], "skip_self": True})
    await b1.request("say", {"text": "both", "to": ["room", "other"], "skip_self": False})
    await until(lambda: _has(b2, "said", ["hi", "both"]))
    await until(lambda: _has(a1, "said", ["both"]))
    await until(lambda: _has(b1, "said", ["hi", "both"]))

    # Direct emit by connection id, to a connection on the other process.
    await a2.request("tell", {"text": "psst", "to": b2.id})
    await b2.request("tell", {"text": "back", "to": a2.id})
    await until(lambda: _has(b2, "told", ["psst"]))
    await until(lambda: _has(a2, "told", ["back"]))

    # The external emitter, from this test process.
    async with RedisEmitter(redis_server.url, channel_prefix=prefix) as emitter:
        await emitter.broadcast("news", {"n": 1}, to="room", skip=b1.id)
        await emitter.emit("private", "for a2", to=a2.id)
    await until(lambda: _has(a1, "news", [{"n": 1}]))
    await until(lambda: _has(b2, "news", [{"n": 1}]))
    await until(lambda: _has(a2, "private", ["for a2"]))

    # Everything sent so far arrived exactly once: a barrier follows on the same path.
    await a2.request("say", {"text": "end", "to": ["room", a2.id], "skip_self": False})
    for client in (a1, a2, b1, b2):
        await until(lambda c=client: _async(bool(c.got("said")) and c.got("said")[-1] == "end"))
    assert a1.got("said") == ["both", "end"]
    assert a2.got("said") == ["end"]
    assert sorted(b1.got("said")[:2]) == ["both", "hi"]  # two senders: either order
    assert sorted(b2.got("said")[:2]) == ["both", "hi"]
    assert len(b1.got("said")) == len(b2.got("said")) == 3
    assert b1.got("news") == []
    assert a2.got("told") == ["back"]
    assert a2.got("private") == ["for a2"]

    await b2.close()
    await until(lambda: _members_are(a1, "room", {a1.id, b1.id}))
    assert await a1.request("rooms_of", b2.id) == []


async def test_members_of_a_killed_process_expire(
    start_nodes: StartNodes, open_client: OpenClient, redis_server: RedisServer
) -> None:
    a, b = start_nodes(redis_server)
    a1, b1 = await open_client(a), await open_client(b)
    await a1.request("join", "room")
    await b1.request("join", "room")
    await until(lambda: _members_are(a1, "room", {a1.id, b1.id}))

    b.kill()

    await until(lambda: _members_are(a1, "room", {a1.id}), timeout=NODE_TTL + WAIT)
    assert await a1.request("rooms_of", b1.id) == []
    await a1.request("say", {"text": "still here", "to": ["room"], "skip_self": False})
    await until(lambda: _has(a1, "said", ["still here"]))


async def test_redis_restart_needs_no_app_restart(
    start_nodes: StartNodes, open_client: OpenClient, own_redis_server: RedisServer
) -> None:
    a, b = start_nodes(own_redis_server)
    a1, a2, b1 = await open_client(a), await open_client(a), await open_client(b)
    for client in (a1, a2, b1):
        await client.request("join", "room")
    pids = [a.process.pid, b.process.pid]

    own_redis_server.stop()
    await a1.request("say", {"text": "local", "to": ["room"], "skip_self": True})
    await until(lambda: _has(a2, "said", ["local"]))  # same-process delivery goes on

    own_redis_server.start()
    count = itertools.count()

    async def crosses() -> bool:
        await a1.request("say", {"text": f"x{next(count)}", "to": [b1.id], "skip_self": True})
        await asyncio.sleep(0.05)
        return bool(b1.got("said"))

    await until(crosses)
    await until(lambda: _members_are(b1, "room", {a1.id, a2.id, b1.id}))
    assert [a.process.poll(), b.process.poll()] == [None, None]
    assert [a.process.pid, b.process.pid] == pids


async def _has(client: Client, event: str, payloads: list[Any]) -> bool:
    got = client.got(event)
    return all(payload in got for payload in payloads)


async def _members_are(client: Client, room: str, ids: set[str]) -> bool:
    return set(await client.request("members", room)) == ids


async def _async(value: bool) -> bool:
    return value
