"""Soak: 10,000 concurrent connections on one uvicorn process, joining, leaving, talking and
churning for a bounded time; afterwards the room index is empty and memory is back near
its baseline.

The server runs in a subprocess (its own 10,000 file descriptors; this process holds the
10,000 client ends). Memory is counted in Python objects (`sys.getallocatedblocks()`, and
tracemalloc bytes in the slow variant, which slows the server about threefold), not RSS:
the allocator keeps freed pages for reuse. Clients are the raw minimal client of
tests/helpers_ws.py: one socket each, no task per client. Figures are printed (pytest -s).
The default test is one round with a 10 s churn; the slow one runs two rounds and checks the
second leaves nothing more behind than the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .helpers_ws import RawClient, close_frame

CONNECTIONS = int(os.environ.get("MS_SOAK_CONNECTIONS", "10000"))
ROOMS = 100


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"needs {needed} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class Admin:
    """One well-behaved connection that asks the server for its figures."""

    def __init__(self, client: RawClient) -> None:
        self.client = client
        self.next_id = 0

    async def ask(self, event: str, payload: Any = "") -> Any:
        self.next_id += 1
        frame = {"event": event, "payload": payload, "id": self.next_id}
        await self.client.send_text(json.dumps(frame))
        for _ in range(100_000):
            opcode, data = await asyncio.wait_for(self.client.read_frame(), 60)
            if opcode != 1:
                continue
            reply = json.loads(data)
            if reply.get("id") == self.next_id:
                assert reply["event"] == "ms:ack", reply
                return reply["payload"]
        raise AssertionError("no reply")


async def connect_all(url: str, count: int, concurrency: int = 200) -> list[RawClient]:
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> RawClient:
        async with gate:
            for attempt in range(5):  # a full accept backlog resets a few; try again
                try:
                    client = await asyncio.wait_for(RawClient.connect(url), 30)
                except (OSError, asyncio.TimeoutError):
                    await asyncio.sleep(0.1 * (attempt + 1))
                    continue
                assert client.status == 101
                return client
            raise AssertionError(f"connection {n} failed 5 times")

    return await asyncio.gather(*(one(n) for n in range(count)))


def join(room: str) -> bytes:
    return json.dumps({"event": "join", "payload": room}).encode()


def leave(room: str) -> bytes:
    return json.dumps({"event": "leave", "payload": room}).encode()


def vanish(client: RawClient, how: int) -> None:
    """Go away: a clean close frame, a bare FIN, or a TCP reset."""
    if how == 0:
        with contextlib.suppress(OSError):
            client.sock.send(close_frame(1000))
        client.close()
    elif how == 1:
        client.close()
    else:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()


def drain(clients: list[RawClient]) -> None:
    """Read whatever the server pushed, without waiting, so nobody looks like a stalled reader."""
    for client in clients:
        try:
            while client.sock.recv(65536):
                pass
        except (BlockingIOError, OSError):
            pass


async def run_round(
    url: str,
    admin: Admin,
    rng: random.Random,
    count: int,
    churn_seconds: float,
    clients: list[RawClient],
    quiet_tasks: int,
) -> dict[str, Any]:
    """Connect `count` clients, spread them over rooms, churn, make them all vanish; check
    the server is back to the admin connection alone. Returns the figures."""
    t0 = time.monotonic()
    clients[:] = await connect_all(url, count)
    connected_in = time.monotonic() - t0
    rooms = [f"room-{rng.randrange(ROOMS)}" for _ in clients]
    for client, room in zip(clients, rooms, strict=True):
        await client.send(_text(join(room)))
    for _ in range(200):
        peak = await admin.ask("index")
        if peak["memberships"] == count + 1 and peak["rooms"] >= count + ROOMS:
            break
        await asyncio.sleep(0.05)
    assert peak["connections"] == count + 1

    # Churn: move between rooms, talk, vanish and come back, for a bounded time.
    steps = reconnects = messages = 0
    deadline = time.monotonic() + churn_seconds
    while time.monotonic() < deadline and steps < 1_000_000:
        steps += 1
        i = rng.randrange(count)
        action = rng.randrange(4)
        client = clients[i]
        if action == 0:
            new = f"room-{rng.randrange(ROOMS)}"
            await client.send(_text(leave(rooms[i])) + _text(join(new)))
            rooms[i] = new
        elif action == 1:
            text = json.dumps({"event": "say to", "payload": {"room": rooms[i], "text": i}})
            await client.send_text(text)
            messages += 1
        elif action == 2:
            vanish(client, rng.randrange(3))
            clients[i] = (await connect_all(url, 1, 1))[0]
            await clients[i].send_text(join(rooms[i]))
            reconnects += 1
        else:
            await client.send_text(json.dumps({"event": "ms:ping", "payload": steps}))
        if steps % 200 == 0:
            drain(clients)
            await asyncio.sleep(0)
    drain(clients)
    during = await admin.ask("index")
    assert during["connections"] == count + 1
    peak = max(peak, during, key=lambda figures: figures["blocks"])

    t0 = time.monotonic()
    for n, client in enumerate(clients):
        vanish(client, n % 3)
    clients.clear()
    for _ in range(600):
        after = await admin.ask("index")
        if after["connections"] == 1 and after["memberships"] == 1:
            break
        await asyncio.sleep(0.05)
    cleaned_in = time.monotonic() - t0
    # uvicorn may still be finishing closing handshakes: wait for memory to settle.
    for _ in range(100):
        await asyncio.sleep(0.2)
        settled = await admin.ask("index")
        if settled["tasks"] <= quiet_tasks and abs(settled["blocks"] - after["blocks"]) < 200:
            break
        after = settled
    after = settled
    # Only the admin connection is left: its own room and nothing else.
    assert after["connections"] == 1
    assert after["sockets"] == 1
    assert after["memberships"] == 1
    assert after["rooms"] == 1
    return {
        "connected_in": connected_in,
        "churn": churn_seconds,
        "steps": steps,
        "reconnects": reconnects,
        "messages": messages,
        "cleaned_in": cleaned_in,
        "peak": peak,
        "after": after,
    }


async def soak(count: int, churn_seconds: float, second_round: bool, traced: bool) -> None:
    raise_fd_limit(count + 1000)  # the server, a subprocess, inherits it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    url = f"ws://127.0.0.1:{port}"
    env = {**os.environ, "MS_TRACEMALLOC": "1" if traced else ""}
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "tests.helpers_apps:app", "--fd", str(listener.fileno()),
        "--log-level", "warning", "--no-access-log", "--backlog", "4096",
        "--ws-ping-interval", "300",  # raw clients do not answer pings (test_faults does that)
        pass_fds=[listener.fileno()], env=env, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    listener.close()
    rng = random.Random(1)
    clients: list[RawClient] = []
    started = time.monotonic()
    try:
        admin_client = None
        for _ in range(200):
            try:
                admin_client = await RawClient.connect(url)
                break
            except OSError:
                await asyncio.sleep(0.05)
        assert admin_client is not None, "the server did not start"
        admin = Admin(admin_client)
        warm = await connect_all(url, 200)  # warm up caches before the baseline
        for client in warm:
            await client.send_text(join("room-0"))
        await asyncio.sleep(0.2)
        for n, client in enumerate(warm):
            vanish(client, n % 3)
        for _ in range(100):
            if (await admin.ask("index"))["connections"] == 1:
                break
            await asyncio.sleep(0.05)
        baseline = await admin.ask("index")
        quiet = baseline["tasks"]

        rounds = []
        for churn in (churn_seconds, 0.5)[: 2 if second_round else 1]:
            figures = await run_round(url, admin, rng, count, churn, clients, quiet)
            if traced:
                figures["after"]["small"] = await admin.ask("small blocks")
            rounds.append(figures)
        mb = 1024 * 1024
        for n, figures in enumerate(rounds, 1):
            peak, after = figures["peak"], figures["after"]
            print(
                f"\nsoak round {n}: {count} connections in {figures['connected_in']:.1f}s, "
                f"churn {figures['churn']:g}s ({figures['steps']} steps: "
                f"{figures['reconnects']} reconnects, {figures['messages']} room messages), "
                f"index empty {figures['cleaned_in']:.1f}s after the last close; server "
                f"allocated blocks {baseline['blocks']} -> {peak['blocks']} -> {after['blocks']}"
                + (
                    f"; traced memory {baseline['traced'] / mb:.1f} -> {peak['traced'] / mb:.1f}"
                    f" -> {after['traced'] / mb:.1f} MiB"
                    f" ({after['small'] / mb:.2f} MiB in small blocks)"
                    if traced
                    else ""
                )
                + f"; RSS {baseline['rss'] / mb:.0f} -> {peak['rss'] / mb:.0f} -> "
                f"{after['rss'] / mb:.0f} MiB; tasks {baseline['tasks']} -> {peak['tasks']} -> "
                f"{after['tasks']}"
            )
        for figures in rounds:
            assert figures["after"]["tasks"] <= baseline["tasks"]
        # Python objects are back near the baseline. What stays after the first round is the
        # capacity of hash tables that held 10,000 entries (dicts and sets do not shrink);
        # a second round reuses it and adds nothing: no leak.
        first = rounds[0]
        for metric in ("blocks", "traced") if traced else ("blocks",):
            growth = first["peak"][metric] - baseline[metric]
            assert growth > 0
            assert first["after"][metric] - baseline[metric] < 0.05 * growth, metric
        # A leak shows in the count of blocks and in the bytes of small blocks; the large ones
        # are hash tables whose size after churn varies by up to 1 MiB (helpers_apps.py).
        if second_round:
            bounds = {"blocks": 2000, "small": 512 * 1024} if traced else {"blocks": 2000}
            for metric, bound in bounds.items():
                leak = rounds[1]["after"][metric] - first["after"][metric]
                assert leak < bound, metric
        admin_client.close()
    finally:
        for client in clients:
            client.close()
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 30)
            except asyncio.TimeoutError:
                server.kill()
                await server.wait()
    print(f"soak total {time.monotonic() - started:.1f}s")


def _text(data: bytes) -> bytes:
    from .helpers_ws import text_frame

    return text_frame(data)


@pytest.mark.timeout(240)
async def test_soak_10000_connections():
    await soak(CONNECTIONS, churn_seconds=10, second_round=False, traced=False)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_soak_10000_connections_twice():
    """Two rounds: what the first leaves behind, the second must not add to (no leak)."""
    await soak(CONNECTIONS, churn_seconds=5, second_round=True, traced=True)
