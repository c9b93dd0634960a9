"""A minimal WebSocket client for the load generator.

One asyncio Protocol per connection and no object per frame: the parser walks the frame
headers in `data_received` and hands each text payload (bytes) to `conn.handler`. The
`websockets` client costs several microseconds per message in frame objects, queues and
futures, which would make the generator the bottleneck; this stays well under a
microsecond per frame (see docs/benchmarks.md for the measured headroom).

Scope: what a benchmark against a well-behaved server on loopback needs. Server frames
are unmasked; client frames use the all-zero masking key, which every server XORs away
like any other key; no extensions are offered, so nothing is compressed; fragmented
messages are reassembled; pings are answered; a close frame records its code.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable

_HANDSHAKE = (
    "GET {path} HTTP/1.1\r\n"
    "Host: {host}:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
)
_ZERO_MASK = b"\x00\x00\x00\x00"

Handler = Callable[["Conn", bytes], None]


def frame(data: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame (masked with the zero key) carrying `data`."""
    n = len(data)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + _ZERO_MASK + data


class Conn(asyncio.Protocol):
    """A client connection; set `handler` to consume text messages on the hot path."""

    def __init__(
        self, path: str, host: str, port: int, ping: bytes | None = None, pong: bytes = b""
    ) -> None:
        self.handler: Handler | None = None
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.opened = asyncio.get_running_loop().create_future()
        self._request = _HANDSHAKE.format(path=path, host=host, port=port).encode()
        self._buf = b""
        self._fragments: list[bytes] = []
        self._open = False
        self._inbox: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ping = ping  # an application-level ping (Engine.IO's "2"), answered with pong
        self._pong = frame(pong)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)
        self._wake()

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            status = buf[: buf.find(b"\r\n")]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()  # type: ignore[union-attr]
                return
            self._open = True
            self.opened.set_result(None)
            buf = buf[end + 4 :]
        self._buf = self._parse(buf)

    def _parse(self, buf: bytes) -> bytes:
        pos, n = 0, len(buf)
        while n - pos >= 2:
            length = buf[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if n - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > n:
                break
            b0 = buf[pos]
            if b0 == 0x81:  # the hot path: a whole text message
                self._deliver(buf[start:end])
            else:
                self._control(b0, buf[start:end])
            pos = end
        return buf[pos:]

    def _control(self, b0: int, data: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode in (0x0, 0x1, 0x2):  # fragments of a message
            self._fragments.append(data)
            if b0 & 0x80:
                whole = b"".join(self._fragments)
                self._fragments.clear()
                self._deliver(whole)
        elif opcode == 0x9:
            self.transport.write(frame(data, 0xA))  # type: ignore[union-attr]
        elif opcode == 0x8:
            self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
            self.transport.write(frame(data[:2], 0x8))  # type: ignore[union-attr]
            self.transport.close()  # type: ignore[union-attr]

    def _deliver(self, data: bytes) -> None:
        if data == self._ping:
            self.transport.write(self._pong)  # type: ignore[union-attr]
        elif self.handler is not None:
            self.handler(self, data)
        else:
            self._inbox.append(data)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # API for the setup phases (not the timed ones)

    def send(self, data: bytes) -> None:
        self.transport.write(frame(data))  # type: ignore[union-attr]

    async def recv(self, timeout: float = 30.0) -> bytes:
        """The next text message that arrived while no handler was set."""
        async with asyncio.timeout(timeout):
            while not self._inbox:
                if self.closed.done():
                    raise ConnectionError(f"closed with {self.close_code}")
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
        return self._inbox.popleft()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(b"\x03\xe8", 0x8))
            self.transport.close()


async def connect(
    host: str,
    port: int,
    path: str = "/",
    *,
    source: str | None = None,
    rcvbuf: int | None = None,
    ping: bytes | None = None,
    pong: bytes = b"",
    timeout: float = 30.0,
) -> Conn:
    """Open a WebSocket connection from `source` (a 127.0.0.x address) to host:port."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:  # before connect, so the advertised window stays small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source is not None:
            sock.bind((source, 0))
        sock.setblocking(False)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            _, conn = await loop.create_connection(
                lambda: Conn(path, host, port, ping, pong), sock=sock
            )
            await conn.opened
    except BaseException:
        sock.close()
        raise
    return conn
