"""The reconnect schedule, the JS client's (js-client/src/backoff.ts) in seconds.

Attempt n waits `delays[n - 1]` (the last delay repeats), shortened at random by up to `jitter`
of it, so that clients cut off together do not all come back in the same instant.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_RECONNECT_DELAYS", "reconnect_delay"]

DEFAULT_RECONNECT_DELAYS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0,
)  # fmt: skip
"""Seconds before reconnect attempts 1, 2, 3...; the last one repeats."""


def reconnect_delay(
    attempt: int,
    delays: Sequence[float],
    jitter: float,
    random: Callable[[], float] = _random.random,
) -> float:
    """The delay before attempt `attempt` (1-based), jittered down by `random()` in [0, 1)."""
    if not delays:
        return 0.0
    base = delays[min(attempt, len(delays)) - 1]
    return base * (1 - jitter * random())
