"""Our own cost per fan-out delivery, with no server and no sockets: the benchmark app driven
through fake ASGI calls, 1,000 receivers in the room `bench` and one sender publishing.

    M=30 valgrind --tool=callgrind python bench/inprocess_fanout.py   # instructions
    python bench/inprocess_fanout.py                                  # wall clock

Instructions per delivery are (count at M=30 - count at M=10) / (20 x 1,000): the set-up
cancels out, and callgrind's counts do not move with the machine's load (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["BENCH_UNLIMITED"] = "1"  # the sender publishes far past the default rate

from inprocess import SCOPE
from ms_app import app

RECEIVERS = 1000
MESSAGES = int(os.environ.get("M", "200"))


async def main() -> None:
    loop = asyncio.get_running_loop()
    counts = [0] * RECEIVERS
    joined = asyncio.Semaphore(0)
    done = asyncio.Event()

    async def receiver(i: int) -> None:
        join = json.dumps({"event": "join", "payload": "bench"})
        messages = [{"type": "websocket.connect"}, {"type": "websocket.receive", "text": join}]

        async def receive() -> Any:
            return messages.pop(0) if messages else await loop.create_future()

        async def send(message: Any) -> None:
            if message["type"] != "websocket.send":
                return
            if '"joined"' in message["text"]:
                joined.release()
                return
            counts[i] += 1
            if counts[i] == MESSAGES and all(count == MESSAGES for count in counts):
                done.set()

        await app(dict(SCOPE), receive, send)

    tasks = [loop.create_task(receiver(i)) for i in range(RECEIVERS)]
    for _ in range(RECEIVERS):
        await joined.acquire()
    frames = [
        {"type": "websocket.receive", "text": json.dumps({"event": "publish", "payload": k})}
        for k in range(MESSAGES)
    ]
    started = asyncio.Event()

    async def receive() -> Any:
        if not started.is_set():
            started.set()
            return {"type": "websocket.connect"}
        await asyncio.sleep(0)  # a server's receive waits
        return frames.pop(0) if frames else await loop.create_future()

    async def nowhere(message: Any) -> None:
        pass

    t0 = time.perf_counter()
    tasks.append(loop.create_task(app(dict(SCOPE), receive, nowhere)))
    await done.wait()
    elapsed = time.perf_counter() - t0
    print(f"{elapsed / (RECEIVERS * MESSAGES) * 1e9:.0f} ns per delivery")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
