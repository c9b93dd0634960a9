"""How the load generator speaks to each server: the frames it sends and how it reads replies.

`ms` is the microsockets wire format (1.0.0 and 2.x; the plain `websockets` and Node `ws`
servers speak it too): `{"event": E, "payload": P}`. `sio` is Socket.IO 5 over Engine.IO 4,
WebSocket transport only: `42["E",P]`, with Engine.IO's open packet, namespace connect and
pings (`2`, answered with `3`) around it.

Payloads are passed as JSON text (bytes) so the hot loops build frames by concatenation.
"""

from __future__ import annotations

import json
from typing import Any

from wsclient import Conn


class Dialect:
    name = "ms"
    path = "/"
    ping: bytes | None = None  # an application ping the client must answer (wsclient.Conn)
    pong = b""

    def event(self, name: bytes, payload: bytes) -> bytes:
        return b'{"event":"' + name + b'","payload":' + payload + b"}"

    def parse(self, data: bytes) -> tuple[str, Any]:
        """(event, payload) of a server message; ("", None) for transport chatter."""
        message = json.loads(data)
        return message["event"], message.get("payload")

    async def open(self, conn: Conn) -> None:
        """Whatever must happen after the WebSocket handshake before events flow."""


class SocketIO(Dialect):
    name = "sio"
    path = "/socket.io/?EIO=4&transport=websocket"
    ping = b"2"  # Engine.IO's ping, every 25 s
    pong = b"3"

    def event(self, name: bytes, payload: bytes) -> bytes:
        return b'42["' + name + b'",' + payload + b"]"

    def parse(self, data: bytes) -> tuple[str, Any]:
        if not data.startswith(b"42"):
            return "", None
        name, *args = json.loads(data[2:])
        return name, args[0] if args else None

    async def open(self, conn: Conn) -> None:
        if not (await conn.recv()).startswith(b"0"):
            raise ConnectionError("no Engine.IO open packet")
        conn.send(b"40")
        while not (await conn.recv()).startswith(b"40"):
            pass


DIALECTS = {"ms": Dialect(), "sio": SocketIO()}
