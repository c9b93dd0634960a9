"""Presence (docs/presence.md), client side: who is visible in the rooms this client watches,
rebuilt from the server's `ms:presence_state` (the full state) and `ms:presence` (batched
diffs), as the JS client's presence.ts does."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..protocol import PRESENCE_STATE
from ..types import JSON

log = logging.getLogger("microsockets.client")

_ABSENT = object()


class PresenceDiff(NamedTuple):
    """What changed in a room: entries that came (or changed) and entries that went."""

    joins: Mapping[str, JSON]
    leaves: Mapping[str, JSON]
    total: int | None = None
    """In a counts-only room: the number of entries (`joins` and `leaves` are then empty)."""


PresenceHandler = Callable[[Mapping[str, JSON], PresenceDiff], Any]
"""Called with a room's current entries and what just changed."""


class PresenceRooms:
    """The presence of every room this client got a state for, and the handlers watching."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, JSON]] = {}
        self._counts: dict[str, int] = {}
        self._handlers: dict[str, list[PresenceHandler]] = {}

    def state(self, room: str) -> dict[str, JSON]:
        """A copy of a room's entries, id -> meta (empty until its state arrived)."""
        return dict(self._entries.get(room, {}))

    def count(self, room: str) -> int:
        """How many entries a room has: the server's count in a counts-only room."""
        return self._counts.get(room, len(self._entries.get(room, {})))

    def subscribe(self, room: str, handler: PresenceHandler) -> Callable[[], None]:
        """Watch a room; returns the function that stops it."""
        self._handlers.setdefault(room, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(room, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def receive(self, event: str, payload: JSON) -> None:
        """Apply a presence frame. A state replaces the room's entries and reports only what
        differs from what this client knew (a reconnect shows no spurious leave and join);
        a diff applies its leaves, then its joins. Frames for rooms with no state yet, or
        malformed ones, are ignored."""
        if not isinstance(payload, dict) or not isinstance(payload.get("room"), str):
            return
        name, is_state = payload["room"], event == PRESENCE_STATE
        entries = self._entries.get(name)
        if entries is None:
            if not is_state:
                return
            entries = self._entries[name] = {}
        count = payload.get("count")
        if isinstance(count, int):
            self._counts[name] = count
            self._notify(name, PresenceDiff({}, {}, count))
            return
        self._counts.pop(name, None)
        joins = payload.get("joins") if isinstance(payload.get("joins"), dict) else {}
        assert isinstance(joins, dict)
        if is_state:
            leaves = {key: meta for key, meta in entries.items() if key not in joins}
        else:
            found = payload.get("leaves")
            leaves = found if isinstance(found, dict) else {}
        gone = {
            key: meta
            for key, meta in leaves.items()
            if entries.pop(key, _ABSENT) is not _ABSENT and key not in joins
        }
        changed = {key: meta for key, meta in joins.items() if entries.get(key, _ABSENT) != meta}
        entries.update(joins)
        if changed or gone or is_state:
            self._notify(name, PresenceDiff(changed, gone))

    def _notify(self, room: str, diff: PresenceDiff) -> None:
        state = dict(self._entries.get(room, {}))
        for handler in list(self._handlers.get(room, ())):
            try:
                handler(state, diff)
            except Exception:
                log.exception("presence handler %r raised", handler)
