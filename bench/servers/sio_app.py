"""The benchmark app for python-socketio 5.x, as an ASGI app: the events of ms_app.py."""

import socketio

sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)
app = socketio.ASGIApp(sio)


@sio.on("join")
async def join(sid, room):
    await sio.enter_room(sid, room)
    await sio.emit("joined", "", to=sid)


@sio.on("publish")
async def publish(sid, payload):
    await sio.emit("msg", payload, room="bench")


@sio.on("echo")
async def echo(sid, payload):
    await sio.emit("echo", payload, to=sid)
