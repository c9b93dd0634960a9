"""The floor under every uvicorn-served app: a bare ASGI WebSocket app that does the least the
idle and echo scenarios need. Accept; answer `join` with `joined`; send every other text frame
back unparsed (an echo request `{"event":"echo","payload":P}` is its own reply). Its RSS per idle
connection and its echo rate are what uvicorn and its WebSocket implementation cost before any
library code: the ceiling for every library on the same server.
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
        text = message.get("text") or ""
        await send({"type": "websocket.send", "text": JOINED if '"join"' in text else text})
