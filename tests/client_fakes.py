"""A fake transport and fake time for the client's unit tests: the test plays the server."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from microsockets.exceptions import ConnectionClosed, connection_closed


class FakeTime:
    """`sleep` for the client; `advance(seconds)` wakes the sleepers due, in order."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = wake
            if not future.done():
                future.set_result(None)
            await settle()
        self.now = target


async def settle() -> None:
    """Let every ready task run until nothing moves (a bounded number of loop turns)."""
    for _ in range(50):
        await asyncio.sleep(0)


class FakeTransport:
    """One fake connection: `sent` holds the client's frames; the test pushes the server's."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.aborted = False
        self._inbox: asyncio.Queue[str | ConnectionClosed] = asyncio.Queue()

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.sent]

    @property
    def events(self) -> list[str]:
        return [frame["event"] for frame in self.frames]

    # The client's side.

    async def send(self, text: str) -> None:
        if self.closed is not None or self.aborted:
            raise connection_closed(1006)
        self.sent.append(text)

    async def recv(self) -> str:
        item = await self._inbox.get()
        if isinstance(item, ConnectionClosed):
            self._inbox.put_nowait(item)
            raise item
        return item

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self.drop(code, reason)

    def abort(self) -> None:
        self.aborted = True
        self.drop(1006)

    # The server's side.

    def push(self, event: str, payload: Any = "", id: int | None = None, o: str | None = None):
        frame: dict[str, Any] = {"event": event, "payload": payload}
        if id is not None:
            frame["id"] = id
        if o is not None:
            frame["o"] = o
        self._inbox.put_nowait(json.dumps(frame))

    def session(self, id: str = "s1", token: str | None = "t1", recovered: bool = False):
        self.push("ms:session", {"id": id, "token": token, "recovered": recovered})

    def drop(self, code: int = 1006, reason: str = "") -> None:
        self._inbox.put_nowait(connection_closed(code, reason))


class FakeServer:
    """The opener: each attempt gets a FakeTransport (opened with `ms:session` when
    `auto_session`), or the refusal close code in `refuse`, or an OSError when `down`."""

    def __init__(self, *, auto_session: bool = True) -> None:
        self.auto_session = auto_session
        self.attempts: list[str] = []
        self.transports: list[FakeTransport] = []
        self.refuse: list[int] = []
        self.down = False
        self._session_count = 0

    @property
    def last(self) -> FakeTransport:
        return self.transports[-1]

    async def opener(self, url: str, subprotocols: Sequence[str]) -> FakeTransport:
        self.attempts.append(url)
        if self.down:
            raise OSError("connection refused")
        if self.refuse:
            raise connection_closed(self.refuse.pop(0), "refused")
        transport = FakeTransport(url)
        self.transports.append(transport)
        if self.auto_session:
            self._session_count += 1
            transport.session(id=f"s{self._session_count}", token=f"t{self._session_count}")
        return transport
