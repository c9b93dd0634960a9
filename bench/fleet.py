"""Many client connections at once: open them, count what they receive, check every message.

Each message payload carries a sequence number (`seq`) and a pad; `check` turns what a
receiver got into counts of lost, duplicated, reordered and corrupted messages.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import wsclient
from dialects import Dialect
from process import cpu_seconds

ROOM = b'"bench"'
# Source addresses spread over 127.0.0.2-9 so 10,000+ connections never run out of ports.
SOURCES = [f"127.0.0.{i}" for i in range(2, 10)]


@dataclass(frozen=True)
class Target:
    """A server under test, as the generator sees it."""

    key: str
    port: int
    dialect: Dialect
    pid: int


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


def make_pad(size: int) -> bytes:
    """A pad that makes a server's `msg` frame about `size` bytes long."""
    return b"x" * max(1, size - len(b'{"event":"msg","payload":{"seq":12345,"pad":""}}'))


async def open_many(
    n: int,
    port: int,
    dialect: Dialect,
    *,
    join: bool,
    concurrency: int = 100,
    rcvbuf: int | None = None,
    first: int = 0,
) -> list[wsclient.Conn]:
    """`n` open connections; with `join`, each has joined the room and seen `joined`."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> wsclient.Conn:
        async with gate:
            conn = await wsclient.connect(
                "127.0.0.1",
                port,
                dialect.path,
                source=SOURCES[i % len(SOURCES)],
                rcvbuf=rcvbuf,
                ping=dialect.ping,
                pong=dialect.pong,
            )
            await dialect.open(conn)
            if join:
                conn.send(dialect.event(b"join", ROOM))
                while dialect.parse(await conn.recv())[0] != "joined":
                    pass
            return conn

    return list(await asyncio.gather(*(one(first + i) for i in range(n))))


def payload(seq: int, pad: bytes) -> bytes:
    return b'{"seq":%d,"pad":"%s"}' % (seq, pad)


def publish_frames(dialect: Dialect, first: int, count: int, pad: bytes) -> bytes:
    """`count` publish frames, seq first..first+count-1, as one write."""
    return b"".join(
        wsclient.frame(dialect.event(b"publish", payload(seq, pad)))
        for seq in range(first, first + count)
    )


class Round:
    """Waits until every watched receiver holds `target` messages."""

    def __init__(self) -> None:
        self.target = 0
        self.pending = 0
        self.finished_at = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def arm(self, target: int, watched: int) -> None:
        self.target, self.pending = target, watched
        self.done = asyncio.get_running_loop().create_future()

    def reached(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.finished_at = time.perf_counter()
            self.done.set_result(None)


class Receiver:
    """Keeps every message a connection receives (raw) and reports to the round."""

    __slots__ = ("conn", "got", "round", "watched")

    def __init__(self, conn: wsclient.Conn, round_: Round) -> None:
        self.conn, self.round, self.got, self.watched = conn, round_, [], True
        self.got: list[bytes]
        conn.handler = self.on_message

    def on_message(self, conn: wsclient.Conn, data: bytes) -> None:
        got = self.got
        got.append(data)
        if len(got) == self.round.target and self.watched:
            self.round.reached()


def check(
    dialect: Dialect, got: Iterable[bytes], first: int, count: int, pad: bytes, event: str
) -> dict[str, int]:
    """Loss, duplication, order and content of one receiver's messages for seq first..+count."""
    seqs: list[int] = []
    corrupt = 0
    want_pad = pad.decode()
    for data in got:
        name, body = dialect.parse(data)
        if name != event or not isinstance(body, dict) or body.get("pad") != want_pad:
            corrupt += 1
            continue
        seqs.append(body["seq"])
    unique = set(seqs)
    expected = set(range(first, first + count))
    return {
        "lost": len(expected - unique),
        "duplicated": len(seqs) - len(unique),
        "reordered": sum(1 for a, b in itertools.pairwise(seqs) if b < a),
        "corrupt": corrupt + len(unique - expected),
    }


def add_checks(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    return {key: total.get(key, 0) + value for key, value in part.items()}


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def close_all(conns: Iterable[wsclient.Conn]) -> None:
    for conn in conns:
        conn.close()
