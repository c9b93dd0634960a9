"""Presence on two uvicorn processes sharing a real Redis: a storm of 1,000 joins and leaves.

The processes serve `tests.test_redis_cluster:cluster_app`. Three watchers stay in the room
while 1,000 connections, spread over both processes, join it with presence and then leave:
each watcher gets a bounded number of presence frames (batching), the final state is empty
everywhere and no Redis key of the cluster is left once the processes stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.test_redis_cluster import Client, Node, StartNodes, start_nodes, until

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import RedisServer  # noqa: E402

pytest_plugins = ["tests.redis_server"]
pytestmark = [pytest.mark.redis, pytest.mark.timeout(180)]

__all__ = ["start_nodes"]  # the fixture, imported for this module's tests

STORM = 1000
ROOM = "storm"


class Watcher(Client):
    """A client that keeps the room's presence as the JS client does, and counts its frames."""

    def __init__(self, ws: ClientConnection) -> None:
        super().__init__(ws)
        self.frames = 0
        self.bytes = 0
        self.seen: dict[str, Any] = {}

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._frames()

    async def _frames(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            event, payload = frame["event"], frame["payload"]
            if event.startswith("ms:presence"):
                self.frames += 1
                self.bytes += len(text.encode())
                if event == "ms:presence_state":
                    self.seen = {}
                for member_id in payload["leaves"]:
                    self.seen.pop(member_id, None)
                self.seen.update(payload["joins"])
            else:
                future = self._acks.pop(frame.get("id", 0), None)
                if future is not None:
                    future.set_result(frame)


async def storm_member(node: Node, number: int, joined: asyncio.Event, go: asyncio.Event) -> int:
    """Join the room with presence, wait for `go`, leave; the presence bytes it received."""
    async with connect(node.url, max_queue=None) as ws:
        await ws.send(
            json.dumps(
                {"event": "present", "payload": {"room": ROOM, "meta": {"n": number}}, "id": 1}
            )
        )
        received = 0
        while True:
            text = await ws.recv()
            if '"ms:ack"' in text[:20]:
                break
            received += len(text)
        joined.set()
        reading = asyncio.create_task(_drain(ws))
        await go.wait()
        reading.cancel()
        return received


async def _drain(ws: ClientConnection) -> None:
    async for _ in ws:
        pass


async def test_a_storm_of_a_thousand_costs_each_watcher_tens_of_frames(
    redis_server: RedisServer, start_nodes: StartNodes, prefix: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MS_OPERATION_TIMEOUT", "5")  # 1,000 handshakes load this machine:
    monkeypatch.setenv("MS_NODE_TTL", "15")  # a busy process must not be taken for dead
    nodes = start_nodes(redis_server)
    watchers = [Watcher(await connect(node.url)) for node in (nodes[0], nodes[1], nodes[0])]
    for number, watcher in enumerate(watchers):
        watcher.id = await watcher.request("present", {"room": ROOM, "meta": {"w": number}})
    await until(lambda: _all_see(watchers, 3))

    go = asyncio.Event()
    joined = [asyncio.Event() for _ in range(STORM)]
    started = time.monotonic()
    members = [
        asyncio.create_task(storm_member(nodes[i % 2], i, joined[i], go)) for i in range(STORM)
    ]
    await asyncio.gather(*(event.wait() for event in joined))
    join_span = time.monotonic() - started
    await until(lambda: _all_see(watchers, 3 + STORM), 60)
    assert {meta["n"] for w in watchers for meta in w.seen.values() if "n" in meta} == set(
        range(STORM)
    )
    go.set()
    await asyncio.gather(*members)
    await until(lambda: _all_see(watchers, 3), 60)

    for watcher in watchers:
        print(
            f"presence storm: a watcher got {watcher.frames} frames, {watcher.bytes} bytes "
            f"({STORM} joins in {join_span:.2f} s, then {STORM} leaves)"
        )
        assert watcher.frames < 200  # a frame per batch per process, not one per arrival

    async def everywhere_three() -> bool:  # the store catches up with the diffs under load
        return [len(await w.request("presence", ROOM)) for w in watchers] == [3, 3, 3]

    await until(everywhere_three, 30)
    for watcher in watchers:
        await watcher.close()
    await until(lambda: _presence_keys(redis_server, prefix) == [], 10)
    for node in nodes:
        node.stop()
    assert _keys(redis_server, f"{prefix}:*") == []


def _all_see(watchers: list[Watcher], count: int) -> bool:
    return all(len(w.seen) == count for w in watchers)


def _presence_keys(server: RedisServer, prefix: str) -> list[str]:
    return _keys(server, f"{prefix}:presence*")


def _keys(server: RedisServer, pattern: str) -> list[str]:
    reply = server.command("KEYS", pattern)
    assert reply.startswith("*"), reply
    return [] if reply == "*0" else [reply]  # only the count line is read: non-empty shows it
