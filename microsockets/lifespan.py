"""ASGI lifespan, and the signal hook that says goodbye (1001) before the server closes sockets.

uvicorn answers SIGTERM by closing every WebSocket itself with 1012 before the lifespan
shutdown runs; chaining its handler lets clients see 1001 "going away" first. Where no
handler runs in the app's process (daphne; hypercorn's workers), the session says goodbye
as the server cancels it (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
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
    """On SIGINT or SIGTERM, calls `on_exit` in the event loop, then the server's own handler.

    `on_exit` starts the goodbyes at once and returns what to wait for; the server's handler
    runs once that is done: uvicorn closes every WebSocket itself (1012) as soon as its
    handler has run, so calling it first races our 1001. A signal that arrives during the
    wait cuts it short, and the server's handler runs.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_exit: Callable[[], Coroutine[Any, Any, object]]) -> None:
        self._on_exit = on_exit
        self._previous: dict[int, SignalHandler] = {}
        self._exiting: asyncio.Task[object] | None = None

    def install(self) -> None:
        """Chain in front of the server's handlers; only where there is one to chain to."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        self._exiting = None
        for sig in self.SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(
                signum: int, frame: FrameType | None, previous: SignalHandler = previous
            ) -> None:
                loop.call_soon_threadsafe(self._exit, previous, signum, frame)

            signal.signal(sig, handler)
            self._previous[sig] = previous

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _exit(self, previous: SignalHandler, signum: int, frame: FrameType | None) -> None:
        if self._exiting is not None:  # a second signal: stop waiting, or pass it on
            if self._exiting.done():
                previous(signum, frame)
            self._exiting.cancel()
            return
        self._exiting = asyncio.get_running_loop().create_task(self._on_exit())
        self._exiting.add_done_callback(lambda _: previous(signum, frame))
