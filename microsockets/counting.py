"""What metrics count once per frame, in plain integers: the ASGI wrappers and handler timing.

A prometheus_client update costs several times a whole frame's work, so the hot paths add up
here and metrics.py hands the sums to prometheus_client when it flushes. None of this runs
unless the application was made with `metrics=True`; it imports no prometheus_client.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from .events import Handler, Router
from .types import Message, Receive, Send


class Tally:
    """Observations of one histogram series, added up until the next flush."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def take(self) -> tuple[list[int], float] | None:
        """The counts per bucket and their sum since the last take; None if there were none."""
        if not any(self.counts):
            return None
        counts, total = self.counts, self.total
        self.counts, self.total = [0] * len(counts), 0.0
        return counts, total


class Traffic:
    """Frames and bytes through the ASGI boundary, added up until the next flush."""

    __slots__ = ("bytes_received", "bytes_sent", "frames_received", "frames_sent")

    def __init__(self) -> None:
        self.frames_received = self.bytes_received = self.frames_sent = self.bytes_sent = 0


def frame_size(message: Message) -> int:
    """UTF-8 bytes of a frame's data (len() is exact for ASCII text, which is O(1) to test)."""
    text = message.get("text")
    if text is None:
        return len(message.get("bytes") or b"")
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


class TimedRouter:
    """The router as the session sees it with metrics on: each handler timed, per event.

    Only events with a registered handler get a series, so unknown events sent by a client
    create no label.
    """

    def __init__(self, router: Router, tally: Callable[[str], Tally]) -> None:
        self._router = router
        self._tally = tally
        self._timed: dict[str, tuple[Handler, Handler]] = {}

    def __call__(self, event: str) -> Handler | None:
        handler: Handler | None = self._router(event)
        if handler is None:
            return None
        found = self._timed.get(event)
        if found is None or found[0] is not handler:
            found = self._timed[event] = (handler, self._time(handler, event))
        return found[1]

    def _time(self, handler: Handler, event: str) -> Handler:
        observe = self._tally(event).observe

        async def timed(ws: Any) -> Any:
            start = perf_counter()
            try:
                return await handler(ws)
            finally:
                observe(perf_counter() - start)

        return timed


def instrument(
    receive: Receive, send: Send, traffic: Traffic, accepted: Callable[[], None]
) -> tuple[Receive, Send]:
    """`receive` and `send` of one connection, adding its frames and bytes to `traffic` and
    calling `accepted` when the handshake is accepted."""

    async def receive_counted() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive":
            traffic.frames_received += 1
            traffic.bytes_received += frame_size(message)
        return message

    def send_counted(message: Message) -> Any:  # returns send's awaitable: no coroutine more
        kind = message["type"]
        if kind == "websocket.send":
            traffic.frames_sent += 1
            traffic.bytes_sent += frame_size(message)
        elif kind == "websocket.accept":
            accepted()
        return send(message)

    return receive_counted, send_counted
