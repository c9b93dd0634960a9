"""The throughput scenarios, fan-out and echo, run on several servers at once, interleaved.

The generator opens its connections to every server first, then runs round 1 on each
server in turn, then round 2 (starting with the next server), and so on. Whatever else the
machine does at some moment then lands on every server alike, which keeps the ratios
honest on a shared machine; the spread of the rounds shows what is left of it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import fleet
import wsclient
from fleet import Meter, Target


class Fanout:
    """A sender publishes `messages` back-to-back to a room of `receivers`; deliveries/s =
    receivers * messages / (last delivery - first send)."""

    def __init__(
        self,
        target: Target,
        *,
        receivers: int = 1000,
        messages: int = 100,
        size: int = 100,
        timeout: float = 60.0,
    ) -> None:
        self.target, self.receivers, self.messages = target, receivers, messages
        self.pad, self.timeout = fleet.make_pad(size), timeout
        self.round = fleet.Round()
        self.boxes: list[fleet.Receiver] = []
        self.sender: wsclient.Conn | None = None
        self.checks: dict[str, int] = {}

    async def open(self) -> None:
        t = self.target
        conns = await fleet.open_many(self.receivers, t.port, t.dialect, join=True)
        self.boxes = [fleet.Receiver(conn, self.round) for conn in conns]
        (self.sender,) = await fleet.open_many(
            1, t.port, t.dialect, join=False, first=self.receivers
        )

    async def run_round(self, n: int) -> dict[str, float]:
        first = n * self.messages
        blob = fleet.publish_frames(self.target.dialect, first, self.messages, self.pad)
        self.round.arm(self.messages, self.receivers)
        meter = Meter(self.target.pid)
        self.sender.transport.write(blob)  # type: ignore[union-attr]
        try:
            await asyncio.wait_for(asyncio.shield(self.round.done), self.timeout)
            elapsed = self.round.finished_at - meter.t0
        except TimeoutError:
            elapsed = time.perf_counter() - meter.t0
        delivered = sum(min(len(box.got), self.messages) for box in self.boxes)
        run = {"rate": delivered / elapsed, "seconds": elapsed, **meter.shares(elapsed)}
        await asyncio.sleep(0.2)  # stragglers (duplicates) arrive before the check
        for box in self.boxes:
            found = fleet.check(self.target.dialect, box.got, first, self.messages, self.pad, "msg")
            self.checks = fleet.add_checks(self.checks, found)
            box.got.clear()
        return run

    def close(self) -> None:
        fleet.close_all([box.conn for box in self.boxes])
        if self.sender is not None:
            self.sender.close()


class _EchoClient:
    """Closed loop: sends the next request from the handler of the previous reply."""

    __slots__ = ("bad", "conn", "dialect", "latencies", "left", "pad", "round", "sent_at", "seq")

    def __init__(self, conn: wsclient.Conn, target: Target, pad: bytes, round_: fleet.Round):
        self.conn, self.dialect, self.pad, self.round = conn, target.dialect, pad, round_
        self.latencies: list[float] = []
        self.seq = self.left = self.bad = 0
        self.sent_at = 0.0
        conn.handler = self.on_message

    def start(self, first: int, count: int) -> None:
        self.seq, self.left = first, count
        self.latencies.clear()
        self.send()

    def send(self) -> None:
        data = self.dialect.event(b"echo", fleet.payload(self.seq, self.pad))
        self.sent_at = time.perf_counter()
        self.conn.transport.write(wsclient.frame(data))  # type: ignore[union-attr]

    def on_message(self, conn: wsclient.Conn, data: bytes) -> None:
        self.latencies.append(time.perf_counter() - self.sent_at)
        name, body = self.dialect.parse(data)
        if name != "echo" or not isinstance(body, dict) or body.get("seq") != self.seq:
            self.bad += 1
        self.left -= 1
        if self.left:
            self.seq += 1
            self.send()
        else:
            self.round.reached()


class Echo:
    """`clients` connections each make `requests` round-trips one after the other;
    throughput = all round-trips / wall time; latency per round-trip."""

    def __init__(
        self,
        target: Target,
        *,
        clients: int = 100,
        requests: int = 300,
        size: int = 100,
        timeout: float = 60.0,
    ) -> None:
        self.target, self.clients, self.requests = target, clients, requests
        self.pad, self.timeout = fleet.make_pad(size), timeout
        self.round = fleet.Round()
        self.users: list[_EchoClient] = []
        self.lost = 0

    async def open(self) -> None:
        t = self.target
        conns = await fleet.open_many(self.clients, t.port, t.dialect, join=False)
        self.users = [_EchoClient(conn, t, self.pad, self.round) for conn in conns]

    async def run_round(self, n: int) -> dict[str, float]:
        self.round.arm(0, self.clients)
        meter = Meter(self.target.pid)
        for i, user in enumerate(self.users):
            user.start((n * self.clients + i) * self.requests, self.requests)
        try:
            await asyncio.wait_for(asyncio.shield(self.round.done), self.timeout)
            elapsed = self.round.finished_at - meter.t0
        except TimeoutError:
            elapsed = time.perf_counter() - meter.t0
            self.lost += sum(user.left for user in self.users)
        latencies = sorted(lat for user in self.users for lat in user.latencies)
        return {
            "rate": len(latencies) / elapsed,
            "p50_ms": 1000 * fleet.percentile(latencies, 0.50),
            "p99_ms": 1000 * fleet.percentile(latencies, 0.99),
            "seconds": elapsed,
            **meter.shares(elapsed),
        }

    @property
    def checks(self) -> dict[str, int]:
        bad = sum(user.bad for user in self.users)
        return {"lost": self.lost, "duplicated": 0, "reordered": bad, "corrupt": 0}

    def close(self) -> None:
        fleet.close_all(user.conn for user in self.users)


async def interleaved(
    kind: type[Fanout] | type[Echo], targets: list[Target], rounds: int, **params: Any
) -> dict[str, dict[str, Any]]:
    """One warm-up round, then `rounds` timed rounds on each server in rotating order."""
    benches = [kind(target, **params) for target in targets]
    results: dict[str, dict[str, Any]] = {}
    live = []
    for bench in benches:
        try:
            await bench.open()
        except (OSError, TimeoutError) as exc:
            results[bench.target.key] = {"error": f"could not connect: {exc!r}"}
        else:
            live.append(bench)
            results[bench.target.key] = {"runs": []}
    for n in range(rounds + 1):
        shift = n % max(1, len(live))
        for bench in live[shift:] + live[:shift]:
            run = await bench.run_round(n)
            if n:  # round 0 warms every server up
                results[bench.target.key]["runs"].append(run)
    for bench in live:
        results[bench.target.key]["checks"] = bench.checks
        bench.close()
    return results


async def fanout(targets: list[Target], rounds: int = 5, **params: Any) -> dict[str, Any]:
    return await interleaved(Fanout, targets, rounds, **params)


async def echo(targets: list[Target], rounds: int = 5, **params: Any) -> dict[str, Any]:
    return await interleaved(Echo, targets, rounds, **params)
