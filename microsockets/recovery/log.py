"""The log of event frames sent to rooms, sans I/O: what a resumed session missed.

Each entry is (offset, targets, skip, frame, time); offsets count up from 1 and reach the
client as the frame's `"o"` field (a string). The log keeps an entry for `window` seconds and
at most `max_entries` entries in all (docs/protocol.md gives the defaults).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from typing import NamedTuple

MAX_ENTRIES = 100_000
"""Entries the log keeps at most, whatever their age."""


class Entry(NamedTuple):
    offset: int
    targets: frozenset[str] | None
    skip: str | None
    frame: str
    time: float


def with_offset(frame: str, offset: str) -> str:
    """The encoded event frame with its `"o"` field spliced in before the closing brace."""
    return f'{frame[:-1]},"o":"{offset}"}}'


class MemoryLog:
    """This process's log: appended in delivery order, trimmed by age and by count."""

    __slots__ = ("_entries", "_next", "max_entries", "window")

    def __init__(self, window: float, max_entries: int = MAX_ENTRIES) -> None:
        self.window = window
        self.max_entries = max_entries
        self._entries: deque[Entry] = deque()
        self._next = 1

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def head(self) -> int:
        """The offset of the last entry appended (0 before the first)."""
        return self._next - 1

    def append(self, frame: str, to: Collection[str] | None, skip: str | None, now: float) -> str:
        """Log an encoded frame; the frame to deliver, with its offset in it."""
        offset = self._next
        self._next += 1
        logged = with_offset(frame, str(offset))
        targets = None if to is None else frozenset(to)
        self._entries.append(Entry(offset, targets, skip, logged, now))
        if len(self._entries) > self.max_entries:
            self._entries.popleft()
        self.trim(now)
        return logged

    def trim(self, now: float) -> None:
        """Drop the entries older than the window."""
        entries, oldest = self._entries, now - self.window
        while entries and entries[0].time < oldest:
            entries.popleft()

    def since(
        self, offset: int, rooms: Collection[str], member: str, limit: int
    ) -> list[str] | None:
        """The frames after `offset` that reached `member` in `rooms`, in order; None when
        some of them are no longer in the log, or there are more than `limit`."""
        entries = self._entries
        first = entries[0].offset if entries else self._next
        if offset < first - 1 or offset > self.head:
            return None
        missed: list[str] = []
        start = offset - first + 1  # offsets are consecutive in the deque
        for index in range(start, len(entries)):
            entry = entries[index]
            if entry.skip == member:
                continue
            if entry.targets is None or not entry.targets.isdisjoint(rooms):
                missed.append(entry.frame)
                if len(missed) > limit:
                    return None
        return missed


def offset_of(frame: str) -> str | None:
    """The offset a logged frame carries (its `"o"`), or None for a frame without one."""
    if not frame.endswith('"}'):
        return None
    head, found, offset = frame[:-2].rpartition(',"o":"')
    return offset if found and head else None


def offset_key(offset: str) -> tuple[int, int]:
    """An offset made comparable: a counter (memory) or a stream id `ms-seq` (Redis)."""
    first, _, second = offset.partition("-")
    return int(first), int(second or 0)
