"""`handler_timeout`: one sweeper task cancels the handlers that run past their deadline.

asyncio.timeout around each call arms and cancels a timer every time, about 7 us, a fifth
of an echo round trip; here a handler call costs two dict writes and the sweeper wakes
only while some handler runs, a few times per timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Watchdog:
    """Cancels a task whose deadline passed; `disarm` says whether that happened to it."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    def arm(self, task: asyncio.Task[Any], now: float) -> None:
        """Watch `task` from now on (`now` is the loop's time)."""
        self._deadlines[task] = now + self.timeout
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def disarm(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching `task`; True if it was cancelled for running past its deadline."""
        self._deadlines.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.timeout / 4)
        while self._deadlines:
            await asyncio.sleep(interval)
            now = loop.time()
            for task, deadline in list(self._deadlines.items()):
                if deadline <= now:
                    del self._deadlines[task]
                    self._expired.add(task)
                    task.cancel()
