"""The per-connection message rate limit, sans I/O."""

from __future__ import annotations


class RateLimit:
    """Allows `rate` messages a second on average and bursts of up to `burst` (GCRA).

    The generic cell rate algorithm keeps one number, the time the next message is due, so a
    check is two comparisons and an addition: a third of a token bucket's refill arithmetic,
    which it matches message for message.
    """

    __slots__ = ("_due", "_interval", "_tolerance")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self._interval = 1 / rate
        self._tolerance = (burst - 1) / rate
        self._due = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Count `cost` units (one message, or a frame's bytes) at `now` (the loop's time);
        False if the limit is already exceeded."""
        due = self._due
        if due < now:
            due = now
        if due - now > self._tolerance:
            return False
        self._due = due + self._interval * cost
        return True
