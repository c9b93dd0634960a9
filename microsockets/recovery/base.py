"""What session recovery needs from a back-end: the log of room frames and the sessions kept
under their resume tokens. The memory store keeps both in this process; RedisRoomManager's
keeps them in Redis so that another process can resume a session."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Coroutine
from types import SimpleNamespace
from typing import Any, NamedTuple, Protocol


class Resumable(Protocol):
    """What the store sees of a connection: its id, rooms, state, and whether it is over."""

    @property
    def id(self) -> str: ...

    @property
    def rooms(self) -> frozenset[str]: ...

    @property
    def state(self) -> SimpleNamespace: ...


OnEnd = Callable[[Any], Coroutine[Any, Any, None]]
"""Called with the connection of a session that ended for good (runs on_disconnect)."""


class Claim(NamedTuple):
    """What a client sent to resume: `ms_id`, `ms_token`, `ms_offset` (docs/protocol.md)."""

    id: str
    token: str
    offset: str

    @classmethod
    def of(cls, params: Any) -> Claim | None:
        """The claim in a connection's query parameters, or None."""
        token, member = params.get("ms_token"), params.get("ms_id")
        if not token or not member:
            return None
        return cls(member, token, params.get("ms_offset") or "")

    def names(self, member_id: str) -> bool:
        """Whether the claim is for this session id (in constant time)."""
        return secrets.compare_digest(self.id.encode(), member_id.encode())


class Resumed(NamedTuple):
    """A session taken over: its id, rooms and state, the frames it missed in order, and the
    offset of the last frame read from the log for it."""

    id: str
    rooms: frozenset[str]
    state: SimpleNamespace
    missed: list[str]
    last: str


def new_token() -> str:
    """A resume token: secret, unguessable, never the connection id."""
    return secrets.token_urlsafe(32)


class SessionStore(ABC):
    """Sessions by resume token, and the log they recover from."""

    window: float
    max_messages: int

    @abstractmethod
    async def publish(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        """Log a frame sent to rooms and deliver it, its offset in it, in log order."""

    @abstractmethod
    async def valid(self, claim: Claim) -> bool:
        """Whether a claim names a session this store holds (the token is not spent)."""

    @abstractmethod
    async def open(self, ws: Resumable) -> str:
        """Keep a connection's session under a fresh token; the token."""

    @abstractmethod
    async def take(self, claim: Claim) -> Resumed | None:
        """Spend the token; the session if everything it missed is in the log, else None
        (and the session ends)."""

    async def catch_up(self, resumed: Resumed) -> list[str]:
        """Frames logged for the session after `resumed.last`, until now: a store whose log
        is read while the resumed connection joins its rooms finds the rest here."""
        return []

    @abstractmethod
    async def detach(self, ws: Resumable) -> bool:
        """The connection is lost: keep its session for the window; False if it has none."""

    @abstractmethod
    async def close(self, ws: Resumable) -> None:
        """The session ended for good (a clean close): its token is void."""

    @abstractmethod
    async def end_all(self) -> None:
        """Shutdown: end the sessions this process keeps, and wait for their hooks."""
