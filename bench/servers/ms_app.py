"""The benchmark app for microsockets, 1.0.0 and 2.x alike (both have this API).

join: enter the room named by the payload, then emit `joined` (the generator waits for it).
publish: broadcast the payload as `msg` to the room `bench`.
echo: emit the payload back as `echo`.
BENCH_CODEC=json (2.x only) makes the app use the stdlib codec even when orjson is installed.
"""

import os

import microsockets

if os.environ.get("BENCH_CODEC") == "json":
    from microsockets.codec import STDLIB

    app = microsockets.Application(codec=STDLIB)
else:
    app = microsockets.Application()


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
