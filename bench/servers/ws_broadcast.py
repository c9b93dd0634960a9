"""The plain `websockets` server: the events of ms_app.py, fanned out with websockets.broadcast.

Usage: python ws_broadcast.py PORT. Uses uvloop when installed, like the uvicorn servers.
"""

import asyncio
import json
import resource
import sys

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

ROOM: set = set()
JOINED = '{"event":"joined","payload":""}'


def encode(event, payload):
    return json.dumps({"event": event, "payload": payload}, separators=(",", ":"))


async def handler(ws):
    try:
        async for text in ws:
            message = json.loads(text)
            event, payload = message["event"], message.get("payload", "")
            if event == "join":
                ROOM.add(ws)
                await ws.send(JOINED)
            elif event == "publish":
                broadcast(ROOM, encode("msg", payload))
            elif event == "echo":
                await ws.send(encode("echo", payload))
    except ConnectionClosed:
        pass
    finally:
        ROOM.discard(ws)


async def main(port):
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=2048) as server:
        await server.serve_forever()


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
