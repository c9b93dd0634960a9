"""The four scenarios of docs/benchmarks.md, each an async function returning a JSON-able dict.

All take the server's port, the dialect and the server's pid (for RSS and CPU readings).
Timed phases touch nothing but the hot handlers; parsing and checking happen after them.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import fleet
import wsclient
from dialects import Dialect
from process import cpu_seconds, rss_kib


def _pad(size: int) -> bytes:
    """A pad that makes a server's `msg` frame about `size` bytes long."""
    return b"x" * max(1, size - len(b'{"event":"msg","payload":{"seq":12345,"pad":""}}'))


class Meter:
    """Wall time and the CPU share of this process and of the server over one phase."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.t0 = time.perf_counter()
        self.own0 = sum(os.times()[:2])
        self.server0 = cpu_seconds(server_pid)

    def shares(self, elapsed: float) -> dict[str, float]:
        return {
            "loadgen_cpu": (sum(os.times()[:2]) - self.own0) / elapsed,
            "server_cpu": (cpu_seconds(self.server_pid) - self.server0) / elapsed,
        }


async def fanout(
    port: int,
    dialect: Dialect,
    server_pid: int,
    *,
    receivers: int = 1000,
    messages: int = 100,
    rounds: int = 5,
    size: int = 100,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """A sender publishes `messages` back-to-back to a room of `receivers`, `rounds` times
    (plus one warm-up round); deliveries/s = receivers * messages / (last delivery - first send).
    """
    pad = _pad(size)
    conns = await fleet.open_many(receivers, port, dialect, join=True)
    (sender,) = await fleet.open_many(1, port, dialect, join=False, first=receivers)
    round_ = fleet.Round()
    boxes = [fleet.Receiver(conn, round_) for conn in conns]
    runs: list[dict[str, float]] = []
    checks: dict[str, int] = {}
    for n in range(rounds + 1):
        first = n * messages
        blob = fleet.publish_frames(dialect, first, messages, pad)
        round_.arm(messages, receivers)
        meter = Meter(server_pid)
        sender.transport.write(blob)  # type: ignore[union-attr]
        try:
            await asyncio.wait_for(asyncio.shield(round_.done), timeout)
            elapsed = round_.finished_at - meter.t0
        except TimeoutError:
            elapsed = float("nan")
        if n:  # round 0 warms the server up
            delivered = sum(min(len(box.got), messages) for box in boxes)
            runs.append({"rate": delivered / elapsed, "seconds": elapsed, **meter.shares(elapsed)})
        await asyncio.sleep(0.3)  # stragglers (duplicates) arrive before the check
        for box in boxes:
            checks = fleet.add_checks(
                checks, fleet.check(dialect, box.got, first, messages, pad, "msg")
            )
            box.got.clear()
    fleet.close_all([*conns, sender])
    return {"runs": runs, "checks": checks, "deliveries": receivers * messages * rounds}


class _EchoClient:
    """Closed loop: sends the next request from the handler of the previous reply."""

    __slots__ = ("bad", "conn", "dialect", "latencies", "left", "pad", "round", "sent_at", "seq")

    def __init__(self, conn: wsclient.Conn, dialect: Dialect, pad: bytes, round_: fleet.Round):
        self.conn, self.dialect, self.pad, self.round = conn, dialect, pad, round_
        self.latencies: list[float] = []
        self.seq = self.left = self.bad = 0
        self.sent_at = 0.0
        conn.handler = self.on_message

    def start(self, first: int, count: int) -> None:
        self.seq, self.left = first, count
        self.send()

    def send(self) -> None:
        data = self.dialect.event(b"echo", fleet.payload(self.seq, self.pad))
        self.sent_at = time.perf_counter()
        self.conn.transport.write(wsclient.frame(data))  # type: ignore[union-attr]

    def on_message(self, conn: wsclient.Conn, data: bytes) -> None:
        self.latencies.append(time.perf_counter() - self.sent_at)
        name, body = self.dialect.parse(data)
        if name != "echo" or body["seq"] != self.seq:
            self.bad += 1
        self.left -= 1
        if self.left:
            self.seq += 1
            self.send()
        else:
            self.round.reached()


async def echo(
    port: int,
    dialect: Dialect,
    server_pid: int,
    *,
    clients: int = 100,
    requests: int = 200,
    rounds: int = 3,
    size: int = 100,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """`clients` connections each make `requests` round-trips one after the other, `rounds`
    times (plus a warm-up); throughput = all round-trips / wall time; latency per round-trip.
    """
    pad = _pad(size)
    conns = await fleet.open_many(clients, port, dialect, join=False)
    round_ = fleet.Round()
    users = [_EchoClient(conn, dialect, pad, round_) for conn in conns]
    runs: list[dict[str, float]] = []
    bad = lost = 0
    for n in range(rounds + 1):
        round_.arm(0, clients)
        for user in users:
            user.latencies.clear()
        meter = Meter(server_pid)
        for i, user in enumerate(users):
            user.start((n * clients + i) * requests, requests)
        try:
            await asyncio.wait_for(asyncio.shield(round_.done), timeout)
            elapsed = round_.finished_at - meter.t0
        except TimeoutError:
            elapsed = float("nan")
        lost += sum(user.left for user in users)
        latencies = sorted(lat for user in users for lat in user.latencies)
        if n:
            runs.append(
                {
                    "rate": len(latencies) / elapsed,
                    "p50_ms": 1000 * fleet.percentile(latencies, 0.50),
                    "p99_ms": 1000 * fleet.percentile(latencies, 0.99),
                    "seconds": elapsed,
                    **meter.shares(elapsed),
                }
            )
    bad = sum(user.bad for user in users)
    fleet.close_all(conns)
    checks = {"lost": lost, "duplicated": 0, "reordered": bad, "corrupt": 0}
    return {"runs": runs, "checks": checks, "deliveries": clients * requests * rounds}


async def idle(
    port: int,
    dialect: Dialect,
    server_pid: int,
    *,
    counts: tuple[int, ...] = (1000, 10000),
    settle: float = 1.5,
) -> dict[str, Any]:
    """Server RSS with `counts` open, joined, idle connections, against a warmed-up baseline."""
    warm = await fleet.open_many(10, port, dialect, join=True)
    fleet.close_all(warm)
    await asyncio.sleep(settle)
    base = rss_kib(server_pid)
    conns: list[wsclient.Conn] = []
    points = []
    for count in counts:
        t0 = time.perf_counter()
        conns += await fleet.open_many(
            count - len(conns), port, dialect, join=True, first=len(conns)
        )
        opened = time.perf_counter() - t0
        await asyncio.sleep(settle)
        rss = rss_kib(server_pid)
        alive = sum(1 for conn in conns if not conn.closed.done())
        points.append(
            {
                "connections": count,
                "alive": alive,
                "rss_kib": rss,
                "per_conn_kib": (rss - base) / count,
                "open_seconds": opened,
            }
        )
    fleet.close_all(conns)
    lost = sum(count - point["alive"] for count, point in zip(counts, points, strict=True))
    checks = {"lost": lost, "duplicated": 0, "reordered": 0, "corrupt": 0}
    return {"base_rss_kib": base, "points": points, "checks": checks}


async def slow(
    port: int,
    dialect: Dialect,
    server_pid: int,
    *,
    receivers: int = 1000,
    messages: int = 100,
    seconds: float = 6.0,
    size: int = 100,
    sample: float = 0.25,
    grace: float = 2.0,
) -> dict[str, Any]:
    """Fan-out for `seconds` with every receiver reading, then for `seconds` with one extra
    receiver that stopped reading (receive buffer 4 KiB). The sender publishes the next
    `messages` when the reading receivers have all the previous ones. Reports both rates
    and the server's RSS over time; then the stalled receiver reads again for `grace` s."""
    pad = _pad(size)
    conns = await fleet.open_many(receivers, port, dialect, join=True)
    (stalled,) = await fleet.open_many(1, port, dialect, join=True, rcvbuf=4096, first=receivers)
    (sender,) = await fleet.open_many(1, port, dialect, join=False, first=receivers + 1)
    round_ = fleet.Round()
    boxes = [fleet.Receiver(conn, round_) for conn in conns]
    stalled_box = fleet.Receiver(stalled, round_)
    rss: list[tuple[float, int]] = []
    t_start = time.perf_counter()

    async def sampler() -> None:
        while True:
            rss.append((time.perf_counter() - t_start, rss_kib(server_pid)))
            await asyncio.sleep(sample)

    sampling = asyncio.create_task(sampler())
    phases = {}
    published = 0
    for phase in ("reading", "stalled"):
        if phase == "stalled":
            stalled.transport.pause_reading()  # type: ignore[union-attr]
            stalled_box.watched = False
        watched = receivers + (phase == "reading")
        meter = Meter(server_pid)
        start = sum(len(box.got) for box in boxes)
        deadline = meter.t0 + seconds
        while (left := deadline - time.perf_counter()) > 0:
            round_.arm(published + messages, watched)
            sender.transport.write(fleet.publish_frames(dialect, published, messages, pad))  # type: ignore[union-attr]
            published += messages
            try:
                await asyncio.wait_for(asyncio.shield(round_.done), left)
            except TimeoutError:
                break
        elapsed = time.perf_counter() - meter.t0
        delivered = sum(len(box.got) for box in boxes) - start
        phases[phase] = {
            "rate": delivered / elapsed,
            "rss_kib_end": rss_kib(server_pid),
            "t_end": elapsed + (meter.t0 - t_start),
            **meter.shares(elapsed),
        }
    sampling.cancel()
    await asyncio.sleep(grace)  # stragglers, then let the stalled receiver read what it can
    stalled.transport.resume_reading()  # type: ignore[union-attr]
    await asyncio.sleep(grace)
    checks: dict[str, int] = {}
    for box in boxes:
        checks = fleet.add_checks(checks, fleet.check(dialect, box.got, 0, published, pad, "msg"))
    slow_check = fleet.check(dialect, stalled_box.got, 0, len(stalled_box.got), pad, "msg")
    fleet.close_all([*conns, stalled, sender])
    return {
        "phases": phases,
        "ratio": phases["stalled"]["rate"] / phases["reading"]["rate"],
        "rss": rss,
        "published": published,
        "stalled_received": len(stalled_box.got),
        "stalled_close_code": stalled.close_code,
        "stalled_check": slow_check,
        "checks": checks,
    }


SCENARIOS = {"fanout": fanout, "echo": echo, "idle": idle, "slow": slow}
