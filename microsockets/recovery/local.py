"""The sessions of this process: the live ones by token, the lost ones with their window's
timer, and the on_disconnect hooks of those that end. Each store builds on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from .base import OnEnd, Resumable


class LocalSessions:
    """Tokens of this process's connections; a lost one's window timer; the endings."""

    def __init__(self, window: float, on_end: OnEnd) -> None:
        self.window = window
        self._on_end = on_end
        self._sockets: dict[str, Resumable] = {}  # token -> the live or lost connection
        self._tokens: dict[str, str] = {}  # session id -> its current token
        self._timers: dict[str, asyncio.TimerHandle] = {}  # token -> end of the window
        self._starts: dict[str, str] = {}  # token -> the log offset when the session began
        self._ending: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sockets)

    @property
    def detached(self) -> int:
        """Sessions whose connection is lost and whose window is running."""
        return len(self._timers)

    def get(self, token: str) -> Resumable | None:
        return self._sockets.get(token)

    def lost(self, token: str) -> bool:
        return token in self._timers

    def tokens(self) -> list[str]:
        """The tokens of the live connections."""
        return [token for token in self._sockets if token not in self._timers]

    def add(self, token: str, ws: Resumable, start: str) -> None:
        """A new session, begun when the log's last offset was `start`."""
        self._sockets[token] = ws
        self._tokens[ws.id] = token
        self._starts[token] = start

    def start_of(self, token: str) -> str:
        """The log's last offset when the session began: what an empty `ms_offset` means."""
        return self._starts.get(token, "0")

    def token_of(self, ws: Resumable) -> str | None:
        """The token of this very connection's session, if it has one here."""
        token = self._tokens.get(ws.id)
        return token if token is not None and self._sockets.get(token) is ws else None

    def detach(self, token: str, expire: Callable[[str], None]) -> None:
        """Start the window of a lost connection; `expire(token)` runs at its end."""
        loop = asyncio.get_running_loop()
        self._timers[token] = loop.call_later(self.window, expire, token)

    def expire(self, token: str) -> None:
        """The window ended: the session ends (stores may check their back-end first)."""
        ws = self.pop(token)
        if ws is not None:
            self.end(ws)

    def pop(self, token: str) -> Resumable | None:
        """Forget a token, and stop its window."""
        ws = self._sockets.pop(token, None)
        self._starts.pop(token, None)
        timer = self._timers.pop(token, None)
        if timer is not None:
            timer.cancel()
        if ws is not None and self._tokens.get(ws.id) == token:
            del self._tokens[ws.id]
        if not self._sockets:  # a dict keeps its table when emptied: give the memory back
            self._sockets, self._tokens, self._timers, self._starts = {}, {}, {}, {}
        return ws

    def clear(self) -> None:
        """Forget every session and stop every window, ending none (a shutdown that leaves
        them to other processes)."""
        for timer in self._timers.values():
            timer.cancel()
        self._sockets, self._tokens, self._timers, self._starts = {}, {}, {}, {}

    def end(self, ws: Resumable) -> None:
        """Run the session's on_disconnect hooks in a task of their own."""
        self.track(self._on_end(ws))

    async def end_now(self, ws: Resumable) -> None:
        """Run the session's on_disconnect hooks, in this task."""
        await self._on_end(ws)

    def track(self, ending: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine that ends sessions in a task that `end_all` waits for."""
        task = asyncio.get_running_loop().create_task(ending)
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def end_all(self) -> None:
        """End every lost session now and wait for every ending."""
        for token in list(self._timers):
            self.expire(token)
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
