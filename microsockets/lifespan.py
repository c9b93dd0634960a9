"""ASGI lifespan, and the signal hook that says goodbye (1001) before uvicorn closes sockets.

uvicorn answers SIGTERM by closing every WebSocket itself with 1012 before the lifespan
shutdown runs; chaining its handler lets clients see 1001 "going away" first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .types import Receive, Send

logger = logging.getLogger("microsockets")

SignalHandler = Callable[[int, FrameType | None], Any]


async def serve_lifespan(
    startup: Callable[[], Any], shutdown: Callable[[], Any], receive: Receive, send: Send
) -> None:
    """Answer the server's lifespan messages by running `startup` and `shutdown`."""
    while True:
        message = await receive()
        step = message["type"].removeprefix("lifespan.")
        if step not in ("startup", "shutdown"):
            continue
        try:
            await (startup if step == "startup" else shutdown)()
        except Exception as exc:
            logger.exception("lifespan %s failed", step)
            await send({"type": f"lifespan.{step}.failed", "message": repr(exc)})
            return
        await send({"type": f"lifespan.{step}.complete"})
        if step == "shutdown":
            return


class ExitSignals:
    """Runs `on_exit` in the event loop when SIGINT or SIGTERM arrives, then the old handler."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._previous: dict[int, SignalHandler] = {}

    def install(self) -> None:
        """Chain in front of the server's handlers; only where there is one to chain to."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(
                signum: int, frame: FrameType | None, previous: SignalHandler = previous
            ) -> None:
                loop.call_soon_threadsafe(self._on_exit)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._previous[sig] = previous

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
