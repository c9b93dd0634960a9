"""The publisher: an outbox that never makes callers wait, drained in ordered batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from .outage import Outage

SendBatch = Callable[[Sequence[tuple[str, bytes]]], Awaitable[object]]
"""Sends (channel, data) pairs in order, within its own deadline; raises if the batch may not
have gone out."""

BATCH = 512


class Publisher:
    """Queues (channel, data) pairs and sends them while the link works.

    Keeps the newest `max_pending`; drops, and counts in the outage, what waited longer than
    `pending_timeout` seconds or failed to send (at most once: a batch is never resent).
    """

    def __init__(
        self,
        outage: Outage,
        logger: logging.Logger,
        *,
        max_pending: int,
        pending_timeout: float,
        operation_timeout: float,
    ) -> None:
        self.outbox: deque[tuple[float, str, bytes]] = deque(maxlen=max_pending)
        self.pending_timeout = pending_timeout
        self.operation_timeout = operation_timeout
        self._outage = outage
        self._logger = logger
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._closing = False
        self._overflowing = False

    @property
    def pending(self) -> int:
        """Publications queued and not yet sent."""
        return len(self.outbox)

    def open(self) -> None:
        """Get ready for `run` in the running event loop, with whatever is still queued."""
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._closing = False
        if self.outbox:
            self._ready.set()
        else:
            self._idle.set()

    def enqueue(self, channel: str, data: bytes) -> None:
        outbox = self.outbox
        if len(outbox) == outbox.maxlen:
            self._outage.dropped += 1
            if not self._overflowing and not self._outage.active:
                self._logger.warning(
                    "%s publish queue full (%d messages); dropping the oldest",
                    self._outage.service,
                    outbox.maxlen,
                )
            self._overflowing = True
        outbox.append((time.monotonic(), channel, data))
        self._ready.set()
        self._idle.clear()

    async def run(
        self, send: SendBatch, link_up: asyncio.Event, failed: Callable[[BaseException], None]
    ) -> None:
        """Drain the outbox in batches, in order, whenever `link_up` is set."""
        while not (self._closing and self._idle.is_set()):
            await self._ready.wait()
            await link_up.wait()
            batch = self._take_batch()
            if not batch:
                self._ready.clear()
                self._overflowing = False
                self._idle.set()
                continue
            try:
                await send(batch)
            except Exception as exc:  # a background task must outlive any failure
                self._outage.dropped += len(batch)  # at most once: a batch is never resent
                failed(exc)

    async def close(self, link_up: bool) -> None:
        """Let `run` end once the outbox is empty; wait for that (briefly) if `link_up`."""
        self._closing = True
        if not self._idle.is_set() and link_up:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self.operation_timeout)

    def clear(self) -> None:
        self.outbox.clear()

    def _take_batch(self) -> list[tuple[str, bytes]]:
        outbox = self.outbox
        oldest = time.monotonic() - self.pending_timeout
        batch: list[tuple[str, bytes]] = []
        while outbox and len(batch) < BATCH:
            queued, channel, data = outbox.popleft()
            if queued >= oldest:
                batch.append((channel, data))
            else:
                self._outage.dropped += 1
        return batch
