"""Recovery across processes: the log is one Redis stream, the sessions are Redis keys.

With recovery on, a broadcast is appended to the stream `P:log` (XADD, trimmed to about
`MAX_ENTRIES` entries, and to the window by XTRIM MINID) and every process reads the stream
(XREAD BLOCK) and delivers each entry to its own members in stream order, its own broadcasts
included: so every client gets the frames in the same order, whatever process it is on, and
a resumed session reads what it missed with XRANGE. docs/scaling.md describes the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Collection
from types import SimpleNamespace
from typing import Any

from ...recovery import LocalSessions, Resumable, Resumed, SessionStore, new_token, with_offset
from ...recovery.base import Claim, OnEnd
from ...recovery.log import MAX_ENTRIES, offset_key
from ..index import RoomIndex
from .client import _REDIS_ERRORS, _reconnect_delay, _text, _within
from .transport import RedisTransport
from .wire import _TAKE

logger = logging.getLogger(__package__)

BATCH = 1000
"""Entries read from the stream in one call."""


class StreamLog:
    """The stream `P:log`: appending, the reader that delivers to this process, reading a gap."""

    def __init__(self, transport: RedisTransport, index: RoomIndex, window: float) -> None:
        self.transport = transport
        self.index = index
        self.window = window
        self.max_entries = MAX_ENTRIES
        self.cursor: str | None = None
        """The id of the last entry delivered here (None before the reader's first read)."""
        self._key = transport.names.log
        self._down = False
        self._trimmed = 0.0

    async def append(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        """XADD a frame; while Redis is away it reaches this process's members only, with no
        offset (it cannot be replayed)."""
        fields: dict[str, str] = {"f": frame}
        if to is not None:
            fields["t"] = json.dumps(list(dict.fromkeys(to)))
        if skip is not None:
            fields["s"] = skip
        redis = self.transport.client
        try:
            if redis is None:
                raise ConnectionError("not started")
            adding = redis.xadd(self._key, fields, maxlen=self.max_entries, approximate=True)  # type: ignore[arg-type]
            await _within(adding, self.transport.operation_timeout)
            self._down = False
        except _REDIS_ERRORS as exc:
            if not self._down:
                logger.warning("recovery log unreachable (%s); delivering locally only", exc)
                self._down = True
            self.index.deliver(frame, to, skip)

    async def run(self) -> None:
        """Deliver each new entry of the stream to the local members it targets, in order."""
        failures = 0
        timeout = self.transport.operation_timeout
        block = max(1, int(timeout * 500))  # ms: well inside the client's socket timeout
        while True:
            redis = self.transport.client
            try:
                if redis is None:
                    raise ConnectionError("not started")
                if self.cursor is None:
                    newest: Any = await _within(redis.xrevrange(self._key, count=1), timeout)
                    self.cursor = _text(newest[0][0]) if newest else "0-0"
                reading = redis.xread({self._key: self.cursor}, count=BATCH, block=block)
                reply: Any = await _within(reading, timeout + block / 1000)
                failures = 0
                for _stream, entries in reply or ():
                    for entry_id, fields in entries:
                        self._deliver(_text(entry_id), fields)
                await self._trim(redis)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a background task must outlive any failure
                logger.debug("recovery log reader: %r", exc)
                await asyncio.sleep(
                    _reconnect_delay(self.transport.membership.reconnect_delays, failures)
                )
                failures += 1

    def _deliver(self, entry_id: str, fields: Any) -> None:
        self.cursor = entry_id
        targets = fields.get(b"t")
        skip = fields.get(b"s")
        self.index.deliver(
            with_offset(fields[b"f"].decode(), entry_id),
            None if targets is None else json.loads(targets),
            None if skip is None else skip.decode(),
        )

    async def _trim(self, redis: Any) -> None:
        """Drop entries older than the window, at most four times per window."""
        now = time.time()
        if now - self._trimmed < self.window / 4:
            return
        self._trimmed = now
        oldest = f"{int((now - self.window) * 1000)}-0"
        await _within(
            redis.xtrim(self._key, minid=oldest, approximate=True),
            self.transport.operation_timeout,
        )

    async def since(
        self, offset: str, rooms: Collection[str], member: str, limit: int
    ) -> tuple[list[str], str] | None:
        """The frames after `offset` for `member` in `rooms`, and the id of the last entry
        read; None when some are trimmed away or there are more than `limit`."""
        redis = self.transport.client
        timeout = self.transport.operation_timeout
        if redis is None:
            return None
        info: Any = await _within(redis.xinfo_stream(self._key), timeout)
        deleted = info.get("max-deleted-entry-id")
        if deleted is None:  # Redis 6.2: a gap reaching past the oldest entry counts as lost
            first = info.get("first-entry")
            deleted = "0-0" if not first else _older(_text(first[0]))
        if offset_key(offset) < offset_key(_text(deleted)):
            return None
        missed: list[str] = []
        start, last = f"({offset}", offset
        while True:
            entries: Any = await _within(redis.xrange(self._key, min=start, count=BATCH), timeout)
            for entry_id, fields in entries:
                last = _text(entry_id)
                skip, targets = fields.get(b"s"), fields.get(b"t")
                if skip is not None and skip.decode() == member:
                    continue
                if targets is None or not set(json.loads(targets)).isdisjoint(rooms):
                    missed.append(with_offset(fields[b"f"].decode(), last))
                    if len(missed) > limit:
                        return None
            if len(entries) < BATCH:
                return missed, last
            start = f"({last}"


class RedisSessionStore(SessionStore):
    """Sessions as `P:session:<token>` keys and the stream log, shared by every process."""

    def __init__(
        self,
        transport: RedisTransport,
        index: RoomIndex,
        window: float,
        max_messages: int,
        on_end: OnEnd,
    ) -> None:
        self.window = window
        self.max_messages = max_messages
        self.transport = transport
        self.log = StreamLog(transport, index, window)
        self.sessions = LocalSessions(window, on_end)
        """This process's sessions: `len(sessions)`, `sessions.detached`."""
        self._names = transport.names
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start reading the stream, and keeping the keys of live sessions from expiring."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self.log.run(), name="microsockets-recovery-log"),
                asyncio.create_task(self._refresh(), name="microsockets-recovery-refresh"),
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def publish(self, frame: str, to: Collection[str] | None, skip: str | None) -> None:
        await self.log.append(frame, to, skip)

    async def valid(self, claim: Claim) -> bool:
        record = await self._call("get", self._names.session(claim.token))
        if record is None:
            return False
        fields = json.loads(record)
        return not fields.get("ended") and claim.names(fields["id"])

    async def open(self, ws: Resumable) -> str:
        token = new_token()
        start = self.log.cursor or "0-0"
        self.sessions.add(token, ws, start)
        await self._save(token, {"id": ws.id, "start": start})
        return token

    async def take(self, claim: Claim) -> Resumed | None:
        redis = self.transport.client
        if redis is None:
            return None
        key = self._names.session(claim.token)
        try:
            raw = await _within(
                redis.eval(_TAKE, 1, key, claim.id),
                self.transport.operation_timeout,
            )
        except _REDIS_ERRORS:
            return None
        if raw is None:
            return None
        record = json.loads(raw)
        if record.get("ended"):
            return None
        local = self.sessions.pop(claim.token)  # lost here: this process resumes it
        rooms = record.get("rooms")
        if rooms is None:  # its process died holding it: the rooms it left in Redis
            members = await self._call("smembers", self._names.rooms(claim.id))
            rooms = None if not members else [_text(room) for room in members]
        state = local.state if local is not None else SimpleNamespace(**record.get("state", {}))
        found = None
        if rooms is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                offset = claim.offset or record["start"]
                found = await self.log.since(offset, rooms, claim.id, self.max_messages)
        if found is None:
            logger.info("session %s not recovered: what it missed is no longer kept", claim.id)
            await self._save(claim.token, {"id": claim.id, "ended": True})  # its holder ends it
            if local is not None:
                self.sessions.end(local)
            return None
        missed, last = found
        return Resumed(claim.id, frozenset(rooms or ()), state, missed, last)

    async def catch_up(self, resumed: Resumed) -> list[str]:
        with contextlib.suppress(*_REDIS_ERRORS):
            found = await self.log.since(resumed.last, resumed.rooms, resumed.id, self.max_messages)
            if found is not None:
                return found[0]
        return []

    async def detach(self, ws: Resumable) -> bool:
        token = self.sessions.token_of(ws)
        if token is None:
            return False
        record = {
            "id": ws.id,
            "start": self.sessions.start_of(token),
            "rooms": sorted(ws.rooms),
            "state": _jsonable(ws.state),
        }
        self.sessions.detach(token, self._expire)
        await self._save(token, record)
        return True

    async def close(self, ws: Resumable) -> None:
        token = self.sessions.token_of(ws)
        if token is not None:
            self.sessions.pop(token)
            await self._call("delete", self._names.session(token))

    async def end_all(self) -> None:
        """Shutdown: the sessions stay in Redis for another process to resume; their
        on_disconnect hooks cannot run here if nobody does (docs/scaling.md)."""
        self.sessions.clear()
        await self.sessions.end_all()

    def _expire(self, token: str) -> None:
        """The window ended here: the session ends unless another process took it."""

        async def check() -> None:
            ws = self.sessions.pop(token)
            taken = await self._call("getdel", self._names.session(token)) is None
            if ws is not None and not taken:
                await self.sessions.end_now(ws)

        self.sessions.track(check())

    async def _save(self, token: str, record: dict[str, Any]) -> None:
        redis = self.transport.client
        if redis is None:
            return
        with contextlib.suppress(*_REDIS_ERRORS):
            await _within(
                redis.set(self._names.session(token), json.dumps(record), ex=_seconds(self.window)),
                self.transport.operation_timeout,
            )

    async def _call(self, command: str, *args: Any) -> Any:
        redis = self.transport.client
        if redis is None:
            return None
        try:
            return await _within(getattr(redis, command)(*args), self.transport.operation_timeout)
        except _REDIS_ERRORS:
            return None

    async def _refresh(self) -> None:
        """Every third of the window, push back the expiry of the live sessions' keys, so that
        a process killed with -9 leaves them resumable for a whole window."""
        while True:
            await asyncio.sleep(self.window / 3)
            redis = self.transport.client
            tokens = self.sessions.tokens()
            if redis is None or not tokens:
                continue
            pipe = redis.pipeline(transaction=False)
            for token in tokens:
                pipe.expire(self._names.session(token), _seconds(self.window))
            with contextlib.suppress(*_REDIS_ERRORS):
                await _within(pipe.execute(), self.transport.operation_timeout)


def _older(entry_id: str) -> str:
    """The id just before an entry's, as a lower bound of what may have been trimmed."""
    ms, seq = offset_key(entry_id)
    return f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**63}"


def _seconds(window: float) -> int:
    return max(1, round(window))


def _jsonable(state: SimpleNamespace) -> dict[str, Any]:
    """The attributes of `ws.state` that JSON can carry to another process."""
    kept = {}
    for name, value in vars(state).items():
        with contextlib.suppress(TypeError, ValueError):
            json.dumps(value)
            kept[name] = value
    return kept
