"""Presence: who is visible in which room with what metadata, and the batched diffs.

One `Presence` per room manager owns this process's entries and the members that watch them;
the manager writes the entries to its store (a transport, or nothing in memory) and calls
`flush` timing here. docs/presence.md describes the frames, the batching and the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping

from ..codec import DEFAULT
from ..protocol import PRESENCE, PRESENCE_STATE
from ..types import JSON
from .base import Member

INTERVAL = 0.05
"""Seconds a process gathers the changes of a room before it sends them as one diff."""
GRACE = 5.0
"""Seconds a detached session keeps its entries by default (never longer than node_ttl)."""

_dumps = DEFAULT.dumps


def encode_meta(meta: JSON) -> str:
    """The JSON text of one entry's metadata, as stored and spliced into frames."""
    return _dumps(meta)


def decode_meta(text: str) -> JSON:
    return DEFAULT.loads(text)


def _entries(entries: Mapping[str, str]) -> str:
    return "{" + ",".join(f"{_dumps(key)}:{meta}" for key, meta in entries.items()) + "}"


def diff_frame(room: str, joins: Mapping[str, str], leaves: Mapping[str, str]) -> str:
    """An encoded `ms:presence` frame; the metadata is spliced in as stored, not re-encoded."""
    return (
        f'{{"event":"{PRESENCE}","payload":{{"room":{_dumps(room)},'
        f'"joins":{_entries(joins)},"leaves":{_entries(leaves)}}}}}'
    )


def state_frame(room: str, entries: Mapping[str, str]) -> str:
    """An encoded `ms:presence_state` frame: every entry of the room, as joins."""
    return diff_frame(room, entries, {}).replace(PRESENCE, PRESENCE_STATE, 1)


def count_frame(event: str, room: str, count: int) -> str:
    """The counts-only form of either frame: `{"room", "count"}`."""
    return _dumps({"event": event, "payload": {"room": room, "count": count}})


class _Diff:
    __slots__ = ("joins", "leaves")

    def __init__(self) -> None:
        self.joins: dict[str, str] = {}
        self.leaves: dict[str, str] = {}


Announce = Callable[[str, str], None]
"""Hands a diff frame of a room to the other processes (a no-op with one process)."""
Count = Callable[[str], Awaitable[int]]
"""The number of entries of a room in the whole cluster (for counts-only rooms)."""


class Presence:
    """This process's presence entries and watchers, and the diffs gathered for `INTERVAL`.

    An entry may outlive its connection for a grace (`hold`): a session waiting to be
    resumed is still present, and nobody sees a leave if it comes back in time (`cancel_hold`).
    """

    def __init__(self, announce: Announce, count: Count | None = None) -> None:
        self.announce = announce
        self.count = count if count is not None else self._local_count
        self.counts_only: Callable[[str], bool] = _never
        """Which rooms send counts instead of entries (`Application(presence_counts=...)`)."""
        self._entries: dict[str, dict[str, str]] = {}  # room -> {id: meta}, held ones included
        self._rooms: dict[str, set[str]] = {}  # id -> the rooms where it has an entry
        self._watchers: dict[str, dict[str, Member]] = {}  # room -> local watching members
        self._waiting: dict[str, dict[str, list[str]]] = {}  # room -> id -> frames before state
        self._held: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, _Diff] = {}
        self._flusher: asyncio.Task[None] | None = None

    # Entries.

    def put(self, member_id: str, room: str, meta: str) -> None:
        """Set an entry (a join, or an update)."""
        self._entries.setdefault(room, {})[member_id] = meta
        self._rooms.setdefault(member_id, set()).add(room)
        diff = self._diff(room)
        diff.leaves.pop(member_id, None)
        diff.joins[member_id] = meta

    def remove(self, member_id: str, room: str) -> bool:
        """Drop an entry and its watcher; whether there was an entry."""
        self._unwatch(member_id, room)
        entries = self._entries.get(room)
        meta = None if entries is None else entries.pop(member_id, None)
        if meta is None:
            return False
        if not entries:
            del self._entries[room]
        rooms = self._rooms[member_id]
        rooms.discard(room)
        if not rooms:
            del self._rooms[member_id]
        self.lost(room, {member_id: meta})
        return True

    def remove_all(self, member_id: str) -> list[str]:
        """Drop every entry of a connection; the rooms it had one in."""
        rooms = self.rooms_of(member_id)
        for room in rooms:
            self.remove(member_id, room)
        return rooms

    def lost(self, room: str, entries: Mapping[str, str]) -> None:
        """Announce leaves: entries removed here, or those of a dead process purged here."""
        diff = self._diff(room)
        for member_id, meta in entries.items():
            diff.joins.pop(member_id, None)
            diff.leaves[member_id] = meta

    def announce_all(self) -> None:
        """Announce every local entry again as a join: after this process was taken for dead
        and purged (its heartbeat expired), the others saw leaves that were not true."""
        for room, entries in self._entries.items():
            self._diff(room).joins.update(entries)

    def local(self, room: str) -> dict[str, str]:
        """This process's entries in a room (held ones included)."""
        return dict(self._entries.get(room, ()))

    def rooms_of(self, member_id: str) -> list[str]:
        """The rooms where a connection has an entry here."""
        return list(self._rooms.get(member_id, ()))

    def has(self, member_id: str) -> bool:
        """Whether a connection has an entry here (a cheap test for apps without presence)."""
        return member_id in self._rooms

    @property
    def entries(self) -> Mapping[str, Mapping[str, str]]:
        """Every local entry by room (read it, do not change it): what a resync writes."""
        return self._entries

    # Watchers.

    def watch(self, member: Member, room: str) -> None:
        """Deliver the room's diffs to `member` from now on, held back until `started`."""
        self._watchers.setdefault(room, {})[member.id] = member
        self._waiting.setdefault(room, {})[member.id] = []

    def waiting(self, room: str) -> list[Member]:
        """The watchers of a room that have not had their state yet."""
        watchers = self._watchers.get(room, {})
        return [watchers[member_id] for member_id in self._waiting.get(room, ())]

    def started(self, member: Member, room: str, state: str) -> None:
        """Send a watcher its state frame, then the diffs that arrived while it was read."""
        waiting = self._waiting.get(room)
        queued = None if waiting is None else waiting.pop(member.id, None)
        if queued is None:
            return  # it left meanwhile
        if not waiting:
            del self._waiting[room]
        member.send_frame(state)
        for frame in queued:
            member.send_frame(frame)

    def watching(self, member_id: str, room: str) -> bool:
        return member_id in self._watchers.get(room, ())

    def deliver(self, room: str, frame: str) -> None:
        """Queue a presence frame to this process's watchers of the room."""
        watchers = self._watchers.get(room)
        if not watchers:
            return
        waiting = self._waiting.get(room)
        for member_id, member in tuple(watchers.items()):
            queued = waiting.get(member_id) if waiting else None
            if queued is None:
                member.send_frame(frame)
            else:
                queued.append(frame)

    def _unwatch(self, member_id: str, room: str) -> None:
        watchers = self._watchers.get(room)
        if watchers is not None and watchers.pop(member_id, None) is not None and not watchers:
            del self._watchers[room]
        waiting = self._waiting.get(room)
        if waiting is not None and waiting.pop(member_id, None) is not None and not waiting:
            del self._waiting[room]

    # The grace of a detached session.

    def hold(self, member_id: str, grace: float, expire: Callable[[], Awaitable[None]]) -> bool:
        """Keep a connection's entries for `grace` seconds after it goes, then `expire()`
        (which removes them: one leave each). Whether it had any entry to keep."""
        rooms = self.rooms_of(member_id)
        for room in rooms:
            self._unwatch(member_id, room)
        if not rooms:
            return False
        self.cancel_hold(member_id)
        self._held[member_id] = asyncio.get_running_loop().create_task(
            self._expire(member_id, grace, expire), name="microsockets-presence-grace"
        )
        return True

    def held(self, member_id: str) -> bool:
        """Whether a connection's entries outlive it for a grace right now."""
        return member_id in self._held

    def cancel_hold(self, member_id: str) -> bool:
        """The session resumed in time: keep its entries, announce nothing. Whether it was held."""
        task = self._held.pop(member_id, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def _expire(
        self, member_id: str, grace: float, expire: Callable[[], Awaitable[None]]
    ) -> None:
        await asyncio.sleep(grace)
        if self._held.get(member_id) is asyncio.current_task():
            del self._held[member_id]
            await expire()

    # Batching.

    def _diff(self, room: str) -> _Diff:
        diff = self._pending.get(room)
        if diff is None:
            diff = self._pending[room] = _Diff()
            if self._flusher is None:
                self._flusher = asyncio.get_running_loop().create_task(
                    self._flush_later(), name="microsockets-presence"
                )
        return diff

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(INTERVAL)
        finally:
            self._flusher = None
        await self.flush()

    async def flush(self) -> None:
        """Send the diffs gathered so far: one frame per room, here and to the other processes."""
        pending, self._pending = self._pending, {}
        for room, diff in pending.items():
            if not diff.joins and not diff.leaves:
                continue
            if self.counts_only(room):
                frame = count_frame(PRESENCE, room, await self.count(room))
            else:
                frame = diff_frame(room, diff.joins, diff.leaves)
            self.deliver(room, frame)
            self.announce(room, frame)

    async def close(self) -> None:
        """Send what is pending and stop every timer (the manager is stopping)."""
        for task in (*self._held.values(), self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._held.clear()
        await self.flush()

    async def _local_count(self, room: str) -> int:
        return len(self._entries.get(room, ()))


def _never(room: str) -> bool:
    return False


def decode_entries(entries: Iterable[tuple[str, str]]) -> dict[str, JSON]:
    """Entries as `app.presence()` returns them: id -> metadata."""
    return {member_id: decode_meta(meta) for member_id, meta in entries}
