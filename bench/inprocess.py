"""Our own cost per echo frame, with no server and no sockets: the benchmark app driven
through fake ASGI receive/send calls that suspend once per frame, as a server's do, on 100
connections taking turns (as in the echo scenario, so each frame finds its connection's
objects out of the CPU caches).

    python bench/inprocess.py                 # microsockets from this work tree
    bench/.venvs/ms1/bin/python bench/inprocess.py   # 1.0.0, the same app
    python bench/inprocess.py --floor         # a bare ASGI echo app: the harness alone
    BENCH_TYPED=msgspec python bench/inprocess.py --object   # echo typed (docs/typing.md)

Prints the best of several runs in microseconds per frame. Quick to rerun while changing
the per-frame path; bench/run.py then says what a change is worth over real sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCOPE = {
    "type": "websocket",
    "asgi": {"version": "3.0"},
    "scheme": "ws",
    "path": "/",
    "raw_path": b"/",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"127.0.0.1")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
    "subprotocols": [],
    "state": {},
}


async def floor_app(scope: Any, receive: Any, send: Any) -> None:
    """Accept, then send every text frame back unparsed (bench/servers/asgi_floor.py)."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def connection(app: Any, frames: int, payload: Any) -> int:
    """One connection sending `frames` echo requests; how many messages the app sent."""
    request = json.dumps({"event": "echo", "payload": payload})
    messages = iter(
        [{"type": "websocket.connect"}]
        + [{"type": "websocket.receive", "text": request}] * frames
        + [{"type": "websocket.disconnect", "code": 1000}]
    )
    sent = 0

    async def receive() -> Any:
        await asyncio.sleep(0)  # a server's receive waits: the connections take turns
        return next(messages)

    async def send(message: Any) -> None:
        nonlocal sent
        sent += 1

    await app(dict(SCOPE), receive, send)
    return sent


async def run_once(app: Any, frames: int, connections: int, payload: Any) -> float:
    each = frames // connections
    started = time.perf_counter()
    sent = await asyncio.gather(*(connection(app, each, payload) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if sent != [each + 1] * connections:
        raise SystemExit(f"expected {each + 1} messages sent per connection, got {sent}")
    return elapsed / (each * connections) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--floor", action="store_true", help="the bare ASGI echo app")
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--connections", type=int, default=100, help="taking turns frame by frame")
    parser.add_argument(
        "--object", action="store_true", help='payload {"seq", "pad"} (as rates.py), not a string'
    )
    args = parser.parse_args()
    if args.floor:
        app = floor_app
    else:
        os.environ["BENCH_UNLIMITED"] = "1"  # one connection sends far past the default rate
        from ms_app import app
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    payload = {"seq": 1, "pad": "x" * 100} if args.object else "x" * 100
    best = min(run(run_once(app, args.frames, args.connections, payload)) for _ in range(args.runs))
    print(f"{best:.2f} us per echo frame")


if __name__ == "__main__":
    main()
