"""Application-level heartbeat, as the JS client's: `ms:ping` every `interval` seconds, and
`on_dead` when nothing at all arrives within `timeout` of a ping. Any frame counts as a sign
of life, so a busy connection never times out. `sleep` is injected so tests run on fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["Heartbeat", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]


class Heartbeat:
    """Pings while started; a missed answer calls `on_dead` once and stops."""

    def __init__(
        self,
        interval: float,
        timeout: float,
        ping: Callable[[int], Awaitable[None]],
        on_dead: Callable[[], None],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self._ping = ping
        self._on_dead = on_dead
        self._sleep = sleep
        self._pinger: asyncio.Task[None] | None = None
        self._deadline: asyncio.Task[None] | None = None
        self.count = 0

    def start(self) -> None:
        """Start pinging (a no-op when the interval is 0)."""
        self.stop()
        if self.interval > 0:
            self._pinger = asyncio.ensure_future(self._pinging())

    def alive(self) -> None:
        """Something arrived: the connection is alive, cancel the pending deadline."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def stop(self) -> None:
        """Stop pinging and forget the deadline."""
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        self.alive()

    async def _pinging(self) -> None:
        while True:
            await self._sleep(self.interval)
            self.count += 1
            with contextlib.suppress(Exception):  # a dying connection: the deadline decides
                await self._ping(self.count)
            if self._deadline is None:
                self._deadline = asyncio.ensure_future(self._expire())

    async def _expire(self) -> None:
        await self._sleep(self.timeout)
        self._deadline = None
        self.stop()
        self._on_dead()
