"""The benchmark app for microsockets, 1.0.0 and 2.x alike (both have this API).

join: enter the room named by the payload, then emit `joined` (the generator waits for it).
publish: broadcast the payload as `msg` to the room `bench`.
echo: emit the payload back as `echo`.
BENCH_CODEC=json (2.x only) makes the app use the stdlib codec even when orjson is installed.
BENCH_UNLIMITED=1 (2.x only) turns the rate limit off, for one connection that sends far past it.
BENCH_RECOVERY=30 (2.x only) turns session recovery on with a 30 s window.
"""

import os

import microsockets

options = {}
if os.environ.get("BENCH_CODEC") == "json":
    from microsockets.codec import STDLIB

    options["codec"] = STDLIB
if os.environ.get("BENCH_UNLIMITED"):
    options["rate_limit"] = None
if os.environ.get("BENCH_RECOVERY"):  # 2.x only: session recovery on, with this window
    options["recovery_window"] = float(os.environ["BENCH_RECOVERY"])
app = microsockets.Application(**options)


@app.on("join")
async def join(ws):
    await ws.join(ws.payload)
    await ws.emit("joined", "")


@app.on("publish")
async def publish(ws):
    await ws.broadcast("msg", ws.payload, to=["bench"])


@app.on("echo")
async def echo(ws):
    await ws.emit("echo", ws.payload)
