"""The observer: what the registry and the session report about connections, off the frame path.

The base class does nothing, so the callers need no `if`; `Application(metrics=True)` passes
`microsockets.metrics.Metrics` instead. Every call here happens once per connection, per
eviction or per refused frame, never once per good frame: the per-frame counts come from
wrappers that exist only while metrics are on (metrics.py).
"""

from __future__ import annotations


class Observer:
    """Receives the library's events that metrics count; every method does nothing here."""

    def disconnected(self, kind: str, code: int) -> None:
        """An accepted connection of `kind` ("event" or "raw") ended with close `code`."""

    def evicted(self, reason: str) -> None:
        """A connection was dropped at once; `reason` is one of EVICTION_REASONS."""

    def refused(self, code: str) -> None:
        """A frame was refused, or its handler failed, with this `ms:error` code."""

    def session_recovered(self) -> None:
        """A reconnecting client got its session back (call it from session recovery)."""

    def session_not_recovered(self) -> None:
        """A reconnecting client asked for a session that could not be recovered."""


EVICTION_REASONS = ("slow_consumer", "app")
"""Why a connection is evicted: its send queue passed `send_queue_limit`, or the application
called `app.evict`."""

NO_OBSERVER = Observer()
