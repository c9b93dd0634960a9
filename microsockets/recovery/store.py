"""The memory session store: sessions and their log in this process (one process only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

from .base import Claim, OnEnd, Resumable, Resumed, SessionStore, new_token
from .local import LocalSessions
from .log import MemoryLog, offset_of

logger = logging.getLogger("microsockets")

Deliver = Callable[[str, "Collection[str] | None", "str | None"], Awaitable[None]]


class MemorySessionStore(SessionStore):
    """A session is kept from its first connection on; the token it was given stays valid
    `window` seconds after that connection is lost, and is taken once."""

    def __init__(
        self,
        deliver: Deliver,
        window: float,
        max_messages: int,
        on_end: OnEnd,
        log: MemoryLog | None = None,
    ) -> None:
        self.window = window
        self.max_messages = max_messages
        self.log = log or MemoryLog(window)
        self.sessions = LocalSessions(window, on_end)
        """This process's sessions: `len(sessions)`, `sessions.detached`."""
        self._deliver = deliver

    async def publish(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        logged = self.log.append(frame, to, skip, asyncio.get_running_loop().time())
        await self._deliver(logged, to, skip)

    async def valid(self, claim: Claim) -> bool:
        ws = self.sessions.get(claim.token)
        return ws is not None and claim.names(ws.id)

    async def open(self, ws: Resumable) -> str:
        token = new_token()
        self.sessions.add(token, ws, str(self.log.head))
        return token

    async def take(self, claim: Claim) -> Resumed | None:
        sessions = self.sessions
        previous = sessions.get(claim.token)
        if previous is None or not sessions.lost(claim.token) or not claim.names(previous.id):
            return None
        start = sessions.start_of(claim.token)
        sessions.pop(claim.token)
        offset = _parse(claim.offset or start)
        missed = None
        if offset is not None:
            missed = self.log.since(offset, previous.rooms, previous.id, self.max_messages)
        if missed is None:
            logger.info("session %s not recovered: what it missed is no longer kept", previous.id)
            sessions.end(previous)
            return None
        last = offset_of(missed[-1]) if missed else None
        return Resumed(previous.id, previous.rooms, previous.state, missed, last or str(offset))

    async def detach(self, ws: Resumable) -> bool:
        token = self.sessions.token_of(ws)
        if token is None:
            return False
        self.sessions.detach(token, self._expire)
        return True

    async def close(self, ws: Resumable) -> None:
        token = self.sessions.token_of(ws)
        if token is not None:
            self.sessions.pop(token)

    async def end_all(self) -> None:
        await self.sessions.end_all()

    def _expire(self, token: str) -> None:
        self.sessions.expire(token)
        self.log.trim(asyncio.get_running_loop().time())


def _parse(offset: str) -> int | None:
    return int(offset) if offset.isdigit() and len(offset) < 20 else None
