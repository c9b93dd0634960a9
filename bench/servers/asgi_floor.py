"""The floor under every uvicorn-served app: a bare ASGI WebSocket app that does the least the
idle-memory scenario needs (accept; answer `join` with `joined`; wait). Its RSS per idle
connection is what uvicorn and its WebSocket implementation cost before any library code.
"""

JOINED = '{"event":"joined","payload":""}'


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if '"join"' in (message.get("text") or ""):
            await send({"type": "websocket.send", "text": JOINED})
