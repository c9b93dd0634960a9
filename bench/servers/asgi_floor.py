"""The floor under every uvicorn-served app: a bare ASGI WebSocket app doing the least each
scenario needs, so its numbers are what uvicorn and its WebSocket implementation cost before
any library code: the ceiling for every library on the same server.

`join` enters the one room and is answered `joined`; `publish` is sent on as `msg` to every
other member, each member with its own queue and drain task, as isolation from a slow
reader needs; any other text frame (an echo request `{"event":"echo","payload":P}` is its own
reply) goes back unparsed.
"""

import asyncio
from collections import deque

JOINED = '{"event":"joined","payload":""}'


class Member:
    """A room member; its queue exists only while it has frames waiting (a deque is 600 B)."""

    __slots__ = ("queue", "send")

    def __init__(self, send):
        self.send, self.queue = send, None

    async def drain(self):
        while self.queue:
            await self.send({"type": "websocket.send", "text": self.queue.popleft()})
        self.queue = None


ROOM: dict[int, Member] = {}
TASKS: set = set()


def publish(me: int, frame: str) -> None:
    for key, member in ROOM.items():
        if key != me:
            if member.queue is None:
                member.queue = deque()
                task = asyncio.get_running_loop().create_task(member.drain())
                TASKS.add(task)
                task.add_done_callback(TASKS.discard)
            member.queue.append(frame)


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    me = id(scope)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text") or ""
            if text.startswith('{"event":"publish"'):
                publish(me, text.replace('"publish"', '"msg"', 1))
            elif text.startswith('{"event":"join"'):
                ROOM[me] = Member(send)
                await send({"type": "websocket.send", "text": JOINED})
            else:
                await send({"type": "websocket.send", "text": text})
    finally:
        ROOM.pop(me, None)
