"""The per-server scenarios, idle memory, slow consumer and flood: each needs a server of its own.

Each takes a list holding one fleet.Target and returns {target key: result}, like the
interleaved throughput scenarios of rates.py.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import Any

import fleet
import wsclient
from fleet import Meter, Target
from process import rss_kib


async def idle(
    targets: list[Target],
    *,
    counts: tuple[int, ...] = (1000, 10000),
    settle: float = 1.5,
) -> dict[str, Any]:
    """Server RSS with `counts` open, joined, idle connections, against a warmed-up baseline."""
    ((key, port, dialect, server_pid),) = [(t.key, t.port, t.dialect, t.pid) for t in targets]
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
    return {key: {"base_rss_kib": base, "points": points, "checks": checks}}


async def slow(
    targets: list[Target],
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
    ((key, port, dialect, server_pid),) = [(t.key, t.port, t.dialect, t.pid) for t in targets]
    pad = fleet.make_pad(size)
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
    result = {
        "phases": phases,
        "ratio": phases["stalled"]["rate"] / phases["reading"]["rate"],
        "rss": rss,
        "published": published,
        "stalled_received": len(stalled_box.got),
        "stalled_close_code": stalled.close_code,
        "stalled_open": not stalled.closed.done(),
        "stalled_check": slow_check,
        "checks": checks,
    }
    return {key: result}


async def flood(
    targets: list[Target],
    *,
    flooders: int = 50,
    rate: float = 10_000.0,
    seconds: float = 3.0,
    baseline: float = 1.0,
    probe_every: float = 0.02,
    give_up: float = 20.0,
) -> dict[str, Any]:
    """An honest client's echo round trip while `flooders` connections each send `ms:ping`
    at `rate` frames a second (microsockets' default rate_limit: none of them is over it)
    for `seconds`, then vanish (TCP reset), and how long after that the round trip takes to
    be back under twice its median before the flood. The flooders read (and drop) what they
    get, and write no faster than TCP takes it."""
    ((key, port, dialect, server_pid),) = [(t.key, t.port, t.dialect, t.pid) for t in targets]
    (honest,) = await fleet.open_many(1, port, dialect, join=False)
    attackers = await fleet.open_many(flooders, port, dialect, join=False, first=1)
    for conn in attackers:
        conn.handler = _drop
    tick = 0.01
    burst = b"".join(
        wsclient.frame(dialect.event(b"ms:ping", b"1")) for _ in range(int(rate * tick))
    )
    echo = dialect.event(b"echo", b'"probe"')
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    async def attack() -> int:
        sent, due = 0, loop.time()
        while not stop.is_set():
            for conn in attackers:
                transport = conn.transport
                # As a client on a socket would: no more than the kernel takes (TCP back-pressure).
                if transport is not None and transport.get_write_buffer_size() < len(burst):
                    transport.write(burst)
                    sent += 1
            due += tick
            await asyncio.sleep(max(0.0, due - loop.time()))
        return sent * int(rate * tick)

    async def probe() -> float:
        """One echo round trip in ms (give_up's worth if it never comes back)."""
        start = time.perf_counter()
        honest.send(echo)
        try:
            while dialect.parse(await honest.recv(timeout=give_up))[0] != "echo":
                pass
        except TimeoutError:
            return give_up * 1000
        return (time.perf_counter() - start) * 1000

    async def probes(until: float) -> list[float]:
        found = []
        while time.perf_counter() < until:
            found.append(await probe())
            await asyncio.sleep(probe_every)
        return found

    before = await probes(time.perf_counter() + baseline)
    normal = fleet.percentile(sorted(before), 0.5)
    meter = Meter(server_pid)
    attacking = asyncio.create_task(attack())
    during = await probes(time.perf_counter() + seconds)
    stop.set()
    frames_sent = await attacking
    shares = meter.shares(time.perf_counter() - meter.t0)
    for conn in attackers:
        _reset(conn)
    stopped = time.perf_counter()
    recovered = None
    while time.perf_counter() - stopped < give_up:
        if await probe() <= 2 * normal:
            recovered = time.perf_counter() - stopped
            break
        await asyncio.sleep(probe_every)
    fleet.close_all([honest])
    return {
        key: {
            "flooders": flooders,
            "frames_sent": frames_sent,
            "before_ms": _spread(before),
            "during_ms": _spread(during),
            "during_replies": len(during),
            "recovery_s": recovered,
            **shares,
            "checks": {"lost": 0, "duplicated": 0, "reordered": 0, "corrupt": 0},
        }
    }


def _reset(conn: wsclient.Conn) -> None:
    """Vanish as a killed client does: SO_LINGER 0, so the server gets a TCP reset."""
    if conn.transport is None:
        return
    sock = conn.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.transport.abort()


def _drop(conn: wsclient.Conn, data: bytes) -> None:
    """A flooder's handler: what the server sends it is not looked at."""


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = fleet.percentile
    return {"p50": pick(ordered, 0.5), "p99": pick(ordered, 0.99), "max": pick(ordered, 1.0)}
