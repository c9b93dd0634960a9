"""A minimal raw WebSocket client over asyncio sockets, for the fault, fuzz and soak tests.

The `websockets` client library is the right tool for well-behaved clients. Misbehaving ones
(a client that stops reading, resets the TCP connection, sends frames no library would send,
or must cost almost nothing because there are 10,000 of them) need the bytes in hand.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
from urllib.parse import urlsplit

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def address(url: str) -> tuple[str, int]:
    """(host, port) of a ws:// URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def handshake_request(path: str = "/", headers: dict[str, str] | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One masked client frame (RFC 6455 section 5.2)."""
    head = bytearray([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    size = len(payload)
    if size < 126:
        head.append(0x80 | size)
    elif size < 2**16:
        head.append(0x80 | 126)
        head += struct.pack("!H", size)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", size)
    mask = os.urandom(4)
    head += mask
    if payload:
        key = (mask * (size // 4 + 1))[:size]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
            size, "big"
        )
    return bytes(head) + payload


def text_frame(text: str | bytes) -> bytes:
    return frame(TEXT, text.encode() if isinstance(text, str) else text)


def close_frame(code: int = 1000) -> bytes:
    return frame(CLOSE, struct.pack("!H", code))


class RawClient:
    """One TCP connection that did (or tried) the WebSocket handshake; reads only on demand."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.status = 0
        self.response = b""
        self._buffer = b""

    @classmethod
    async def connect(
        cls,
        url: str,
        path: str = "/",
        headers: dict[str, str] | None = None,
        *,
        rcvbuf: int | None = None,
        handshake: bool = True,
    ) -> RawClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if rcvbuf is not None:  # before connect, so the TCP window starts small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        client = cls(sock)
        try:
            await client.loop.sock_connect(sock, address(url))
            if handshake:
                await client.send(handshake_request(path, headers))
                await client.read_response()
        except BaseException:
            sock.close()
            raise
        return client

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def send_text(self, text: str | bytes) -> None:
        await self.send(text_frame(text))

    async def _fill(self) -> bool:
        chunk = await self.loop.sock_recv(self.sock, 65536)
        self._buffer += chunk
        return bool(chunk)

    async def read_response(self) -> int:
        """Read the HTTP handshake response; its status (101 when accepted)."""
        while b"\r\n\r\n" not in self._buffer:
            if not await self._fill():
                raise ConnectionError("connection closed during the handshake")
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        self.response = head
        self.status = int(head.split(b" ", 2)[1])
        return self.status

    async def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not await self._fill():
                raise ConnectionError("connection closed mid-frame")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    async def read_frame(self) -> tuple[int, bytes]:
        """The next server frame as (opcode, payload); ConnectionError at EOF."""
        first, second = await self._exactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self._exactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self._exactly(8))
        return first & 0x0F, await self._exactly(size)

    async def read_until_close(self, limit: int = 100_000) -> tuple[int | None, list[bytes]]:
        """Read frames until a close frame or EOF: (close code or None at EOF, text frames)."""
        texts: list[bytes] = []
        for _ in range(limit):
            try:
                opcode, payload = await self.read_frame()
            except (ConnectionError, OSError):
                return None, texts
            if opcode == CLOSE:
                return (struct.unpack("!H", payload[:2])[0] if payload else 1005), texts
            if opcode == TEXT:
                texts.append(payload)
        raise AssertionError(f"no close within {limit} frames")

    async def at_eof(self) -> bool:
        """True if the server has closed the TCP connection (reads whatever is pending)."""
        try:
            while await self._fill():
                self._buffer = b""
        except OSError:
            pass
        return True

    def reset(self) -> None:
        """Vanish: close with SO_LINGER 0, so the server gets a TCP RST and nothing else."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
