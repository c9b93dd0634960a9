"""A token bucket: the per-connection message rate limit."""

from __future__ import annotations


class TokenBucket:
    """Allows `rate` messages a second on average and bursts of up to `burst`."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means the message is over the limit."""
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
