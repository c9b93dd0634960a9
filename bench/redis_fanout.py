"""Fan-out through Redis vs in memory: 1,000 receivers, one room, server-side broadcasts.

    python bench/redis_fanout.py                 # 1,000 receivers, 100 messages, 3 rounds
    python bench/redis_fanout.py --smoke         # 50 receivers, 20 messages, 1 round
    python bench/redis_fanout.py --recovery 30   # and both again with recovery_window=30

Two set-ups, the same clients:
- memory: one uvicorn process with the default MemoryRoomManager holds every receiver;
- redis: two uvicorn processes with RedisRoomManager on a private redis-server, half of the
  receivers on each; the broadcasts start on the first process, so half of the deliveries
  cross Redis.
A sender asks the first process to broadcast `messages` events to the room; a round ends when
every receiver has them all. Receivers live in two client processes, so the clients are not
the bottleneck of one set-up more than the other. Everything listens on 127.0.0.1 only.

Prints one line per set-up, the ratio redis/memory of deliveries per second, then one JSON
line with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUND_TIMEOUT = 60.0
START_TIMEOUT = 20.0
CLIENT_PROCESSES = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {START_TIMEOUT} s")


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# -- the server (run as `redis_fanout.py serve`) -----------------------------------------------


def serve(port: int, redis_url: str | None, prefix: str, recovery: float | None) -> None:
    import uvicorn

    import microsockets
    from microsockets.rooms import BaseRoomManager, MemoryRoomManager
    from microsockets.rooms.redis import RedisRoomManager

    manager: BaseRoomManager = (
        RedisRoomManager(redis_url, channel_prefix=prefix) if redis_url else MemoryRoomManager()
    )
    app = microsockets.Application(
        room_manager=manager, max_connections=None, rate_limit=None, recovery_window=recovery
    )

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join("room")
        return "ok"

    @app.on("burst")
    async def burst(ws: microsockets.Socket) -> str:
        for i in range(ws.payload["messages"]):
            await app.broadcast("tick", [ws.payload["round"], i, ws.payload["body"]], to="room")
        return "ok"

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


# -- the clients (run as `redis_fanout.py receive`) --------------------------------------------


async def receive(urls: list[str], count: int, messages: int, rounds: int) -> None:
    """Open `count` receivers spread over `urls`; report when each round has fully arrived."""
    from websockets.asyncio.client import connect

    clients = []
    for i in range(count):
        ws = await connect(urls[i % len(urls)], open_timeout=START_TIMEOUT, max_queue=None)
        await ws.send('{"event":"join","payload":"","id":1}')
        clients.append(ws)
    for ws in clients:
        await asyncio.wait_for(ws.recv(), START_TIMEOUT)  # the join ack
    print("ready", flush=True)

    async def drain(ws: Any) -> None:
        for _ in range(messages):
            await ws.recv(decode=False)

    for _ in range(rounds):
        await asyncio.wait_for(asyncio.gather(*(drain(ws) for ws in clients)), ROUND_TIMEOUT)
        print(f"done {time.time()}", flush=True)
    for ws in clients:
        await ws.close()


# -- the coordinator ---------------------------------------------------------------------------


class Receivers:
    """Client processes holding the receivers; they say when a round has arrived."""

    def __init__(self, urls: list[str], receivers: int, messages: int, rounds: int) -> None:
        shares = [receivers // CLIENT_PROCESSES] * CLIENT_PROCESSES
        shares[0] += receivers - sum(shares)
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "receive",
                    "--urls",
                    ",".join(urls),
                    "--count",
                    str(share),
                    "--messages",
                    str(messages),
                    "--rounds",
                    str(rounds),
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for share in shares
            if share
        ]

    def expect(self, word: str) -> list[str]:
        lines = []
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.startswith(word):
                raise RuntimeError(f"a receiver process said {line!r} instead of {word!r}")
            lines.append(line)
        return lines

    def close(self) -> None:
        for process in self.processes:
            stop(process)


async def send_burst(url: str, round_no: int, messages: int, body: str) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, open_timeout=START_TIMEOUT) as ws:
        payload = {"messages": messages, "round": round_no, "body": body}
        await ws.send(json.dumps({"event": "burst", "payload": payload, "id": 1}))
        while json.loads(await asyncio.wait_for(ws.recv(), ROUND_TIMEOUT)).get("id") != 1:
            pass


def run_setup(
    name: str,
    servers: int,
    redis_url: str | None,
    args: argparse.Namespace,
    recovery: float | None = None,
) -> dict[str, Any]:
    """Start the servers and receivers of one set-up; time `rounds` rounds of fan-out."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    ports = [free_port() for _ in range(servers)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    receivers = None
    try:
        for port in ports:
            argv = [sys.executable, __file__, "serve", "--port", str(port), "--prefix", prefix]
            if redis_url:
                argv += ["--redis", redis_url]
            if recovery is not None:
                argv += ["--recovery", str(recovery)]
            procs.append(subprocess.Popen(argv, cwd=ROOT, env=env))
        for port, proc in zip(ports, procs, strict=True):
            wait_listening(port, proc)
        urls = [f"ws://127.0.0.1:{port}/" for port in ports]
        receivers = Receivers(urls, args.receivers, args.messages, args.rounds)
        receivers.expect("ready")
        rates = []
        for round_no in range(args.rounds):
            started = time.time()
            asyncio.run(send_burst(urls[0], round_no, args.messages, "x" * args.size))
            finished = max(float(line.split()[1]) for line in receivers.expect("done"))
            seconds = max(finished - started, 1e-6)
            rates.append(args.receivers * args.messages / seconds)
        rate = statistics.median(rates)
        print(
            f"{name:>15}: {servers} process(es), {args.receivers} receivers, "
            f"{args.messages} messages x {args.rounds} rounds: {rate:,.0f} deliveries/s",
            flush=True,
        )
        return {"processes": servers, "deliveries_per_s": rate, "rounds": rates}
    finally:
        if receivers is not None:
            receivers.close()
        for proc in procs:
            stop(proc)


def start_redis() -> tuple[subprocess.Popen[Any], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (make system installs it)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    wait_listening(port, process)
    return process, f"redis://127.0.0.1:{port}/0"


def _give_up(signum: int, frame: object) -> None:
    raise TimeoutError("the benchmark took longer than --timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve", "receive"])
    parser.add_argument("--receivers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64, help="payload bytes per message")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check it runs")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (seconds)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--urls")
    parser.add_argument("--count", type=int)
    parser.add_argument(
        "--recovery", type=float, help="also run both set-ups with this recovery_window"
    )
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.port, args.redis, args.prefix, args.recovery)
        return
    if args.mode == "receive":
        asyncio.run(receive(args.urls.split(","), args.count, args.messages, args.rounds))
        return
    if args.smoke:
        args.receivers, args.messages, args.rounds = 50, 20, 1
    signal.signal(signal.SIGALRM, _give_up)
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    redis_process, redis_url = start_redis()
    try:
        memory = run_setup("memory", 1, None, args)
        redis = run_setup("redis", 2, redis_url, args)
        recovering = {}
        if args.recovery is not None:
            for name, servers, url in (("memory", 1, None), ("redis", 2, redis_url)):
                found = run_setup(f"{name} recovery", servers, url, args, args.recovery)
                recovering[name] = found
    finally:
        stop(redis_process)
    ratio = redis["deliveries_per_s"] / memory["deliveries_per_s"]
    print(f" ratio: redis/memory = {ratio:.2f}", flush=True)
    for name, plain in (("memory", memory), ("redis", redis)):
        if name in recovering:
            on = recovering[name]["deliveries_per_s"] / plain["deliveries_per_s"]
            print(f" ratio: {name} recovery on/off = {on:.2f}", flush=True)
    result = {
        "benchmark": "redis_fanout",
        "receivers": args.receivers,
        "messages": args.messages,
        "rounds": args.rounds,
        "payload_bytes": args.size,
        "memory": memory,
        "redis": redis,
        "ratio": ratio,
        "recovery": recovering,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
