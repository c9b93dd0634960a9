"""The benchmark app for microsockets, 1.0.0 and 2.x alike (both have this API).

join: enter the room named by the payload, then emit `joined` (the generator waits for it).
publish: broadcast the payload as `msg` to the room `bench`.
echo: emit the payload back as `echo`.
BENCH_CODEC=json (2.x only) makes the app use the stdlib codec even when orjson is installed.
BENCH_UNLIMITED=1 (2.x only) turns the rate limit off, for one connection that sends far past it.
BENCH_TYPED=msgspec or pydantic (2.x only) makes echo a typed handler: the payload validated
into a model, the model emitted back (docs/typing.md).
BENCH_METRICS=1 (2.x only) turns Prometheus metrics on, served at /metrics.
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
if os.environ.get("BENCH_METRICS"):
    options["metrics"] = True
if os.environ.get("BENCH_RECOVERY"):  # 2.x only: session recovery on, with this window
    options["recovery_window"] = float(os.environ["BENCH_RECOVERY"])
app = microsockets.Application(**options)
if os.environ.get("BENCH_METRICS"):
    app.http_app = app.metrics_app


@app.on("join")
async def join(ws):
    await ws.join(ws.payload)
    await ws.emit("joined", "")


@app.on("publish")
async def publish(ws):
    await ws.broadcast("msg", ws.payload, to=["bench"])


TYPED = os.environ.get("BENCH_TYPED")
if TYPED == "msgspec":
    import msgspec

    class Echo(msgspec.Struct):
        seq: int
        pad: str

elif TYPED == "pydantic":
    import pydantic

    class Echo(pydantic.BaseModel):
        seq: int
        pad: str


if TYPED:

    @app.on("echo")
    async def echo(ws, data: Echo):
        await ws.emit("echo", data)

else:

    @app.on("echo")
    async def echo(ws):
        await ws.emit("echo", ws.payload)
