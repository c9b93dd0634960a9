"""What metrics count once per frame, in plain integers: the ASGI wrappers and handler timing.

A prometheus_client update costs several times a whole frame's work, so the hot paths add up
here and metrics.py hands the sums to prometheus_client when it flushes. None of this runs
unless the application was made with `metrics=True`; it imports no prometheus_client.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
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


def timed(router: Router, tally_for: Callable[[str], Tally]) -> Router:
    """`router` as the session sees it with metrics on: each handler timed, per event.

    Only events with a registered handler get a Tally (a metric series), so unknown events
    sent by a client create no label. Closures rather than methods: this runs per frame.
    """
    wrapped: dict[str, tuple[Handler, Handler]] = {}
    get = wrapped.get

    def lookup(event: str) -> Handler | None:
        handler = router(event)
        if handler is None:
            return None
        found = get(event)
        if found is None or found[0] is not handler:  # first call, or a handler replaced
            found = wrapped[event] = (handler, _timed(handler, tally_for(event)))
        return found[1]

    return lookup


def _timed(handler: Handler, tally: Tally) -> Handler:
    bounds = tally.bounds

    async def call(ws: Any) -> Any:
        start = perf_counter()
        try:
            return await handler(ws)
        finally:
            elapsed = perf_counter() - start
            tally.counts[bisect_left(bounds, elapsed)] += 1  # Tally.observe, inlined
            tally.total += elapsed

    return call


def instrument(
    receive: Receive, send: Send, traffic: Traffic, accepted: Callable[[], None]
) -> tuple[Receive, Send]:
    """`receive` and `send` of one connection, adding its frames and bytes to `traffic` and
    calling `accepted` when the handshake is accepted. frame_size is inlined: per frame."""

    async def receive_counted() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive":
            traffic.frames_received += 1
            text = message.get("text")
            if text is None:
                traffic.bytes_received += len(message.get("bytes") or b"")
            else:
                traffic.bytes_received += (
                    len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
                )
        return message

    def send_counted(message: Message) -> Any:  # returns send's awaitable: no coroutine more
        text = message.get("text")
        if text is not None:
            traffic.frames_sent += 1
            traffic.bytes_sent += (
                len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
            )
        elif message["type"] == "websocket.send":
            traffic.frames_sent += 1
            traffic.bytes_sent += len(message.get("bytes") or b"")
        elif message["type"] == "websocket.accept":
            return _then(send(message), accepted)
        return send(message)

    return receive_counted, send_counted


async def _then(sending: Awaitable[None], done: Callable[[], None]) -> None:
    """Send, then call `done`: a handshake whose accept could not be sent is not counted."""
    await sending
    done()
