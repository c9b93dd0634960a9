"""The sessions of one process that a reconnect may resume, under their resume tokens.

A session is in the store from its first connection on: the token it was given goes with
the live connection, and stays valid for `window` seconds after that connection is lost
(it is then *detached*). A token is taken once: resuming gives the new connection a new one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Collection, Coroutine
from typing import Any, NamedTuple

from ..socket import Socket
from .log import MemoryLog

logger = logging.getLogger("microsockets")


class Claim(NamedTuple):
    """What a client sent to resume: `ms_id`, `ms_token`, `ms_offset`."""

    id: str
    token: str
    offset: str

    @classmethod
    def of(cls, ws: Socket) -> Claim | None:
        params = ws.query_params
        token, member = params.get("ms_token"), params.get("ms_id")
        if not token or not member:
            return None
        return cls(member, token, params.get("ms_offset") or "")


class Resumed(NamedTuple):
    """A session taken over: the connection it had, and the frames it missed, in order."""

    previous: Socket
    missed: list[str]


class _Record:
    __slots__ = ("socket", "start", "timer")

    def __init__(self, socket: Socket, start: int) -> None:
        self.socket = socket
        """The live connection, or the lost one kept for the window."""
        self.start = start
        """The log's head when the session began: what an empty `ms_offset` means."""
        self.timer: asyncio.TimerHandle | None = None
        """Set while detached: the end of the window."""


class SessionStore:
    """Sessions by resume token, the log they recover from, and the end of their windows."""

    def __init__(
        self,
        window: float,
        on_end: Callable[[Socket], Coroutine[Any, Any, None]],
        *,
        max_messages: int,
        log: MemoryLog | None = None,
    ) -> None:
        self.window = window
        self.max_messages = max_messages
        self.log = log or MemoryLog(window)
        self._on_end = on_end
        self._sessions: dict[str, _Record] = {}
        self._tokens: dict[str, str] = {}  # session id -> its current token
        self._ending: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def detached(self) -> int:
        """Sessions whose connection is lost and whose window is running."""
        return sum(record.timer is not None for record in self._sessions.values())

    def publish(self, frame: str, to: Collection[str] | None, skip: str | None) -> str:
        """Log a frame sent to rooms; the frame to deliver, its offset in it."""
        return self.log.append(frame, to, skip, asyncio.get_running_loop().time())

    def holder(self, claim: Claim) -> Socket | None:
        """The connection (live or lost) of the session a claim names, if the claim is good."""
        record = self._sessions.get(claim.token)
        if record is None or not secrets.compare_digest(record.socket.id, claim.id):
            return None
        return record.socket

    def open(self, ws: Socket) -> str:
        """Keep a connection's session under a fresh token; the token."""
        token = secrets.token_urlsafe(32)
        self._sessions[token] = _Record(ws, self.log.head)
        self._tokens[ws.id] = token
        return token

    def take(self, claim: Claim) -> Resumed | None:
        """Take a detached session for a new connection, if everything it missed is in the log.

        The token is spent either way; a session that cannot be recovered ends now.
        """
        record = self._sessions.get(claim.token)
        if record is None or record.timer is None or record.socket.id != claim.id:
            return None
        self._forget(claim.token, record)
        previous = record.socket
        missed = None
        offset = record.start if claim.offset == "" else _parse(claim.offset)
        if offset is not None:
            missed = self.log.since(offset, previous.rooms, previous.id, self.max_messages)
        if missed is None:
            logger.info("session %s not recovered: its history is gone", previous.id)
            self._end(previous)
            return None
        return Resumed(previous, missed)

    def detach(self, ws: Socket) -> bool:
        """The connection is lost: keep its session for the window; False if it has none."""
        token = self._tokens.get(ws.id)
        record = None if token is None else self._sessions.get(token)
        if token is None or record is None or record.socket is not ws:
            return False
        loop = asyncio.get_running_loop()
        record.timer = loop.call_later(self.window, self._expire, token)
        return True

    def close(self, ws: Socket) -> None:
        """The session ended for good (a clean close): its token is void."""
        token = self._tokens.get(ws.id)
        record = None if token is None else self._sessions.get(token)
        if token is not None and record is not None and record.socket is ws:
            self._forget(token, record)

    def end_all(self) -> None:
        """Shutdown: every detached session ends now."""
        for token, record in list(self._sessions.items()):
            if record.timer is not None:
                self._forget(token, record)
                self._end(record.socket)

    async def drain(self) -> None:
        """Wait for the on_disconnect hooks of ended sessions."""
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)

    def _expire(self, token: str) -> None:
        record = self._sessions.get(token)
        if record is None:
            return
        self._forget(token, record)
        self.log.trim(asyncio.get_running_loop().time())
        self._end(record.socket)

    def _forget(self, token: str, record: _Record) -> None:
        del self._sessions[token]
        if self._tokens.get(record.socket.id) == token:
            del self._tokens[record.socket.id]
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None

    def _end(self, ws: Socket) -> None:
        task = asyncio.get_running_loop().create_task(self._on_end(ws))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)


def _parse(offset: str) -> int | None:
    return int(offset) if offset.isdigit() and len(offset) < 20 else None
