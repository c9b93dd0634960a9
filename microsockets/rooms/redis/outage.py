"""The outage tracker: one warning when the first Redis link fails, one when the last recovers."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__package__)  # one logger name for the whole Redis package


class _Outage:
    """Logs a Redis outage once when the first link fails and once when the last recovers."""

    def __init__(self) -> None:
        self._down: set[str] = set()
        self._since = 0.0
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._down)

    def failed(self, link: str, exc: BaseException) -> None:
        if not self._down:
            self._since = time.monotonic()
            self.dropped = 0
            logger.warning(
                "Redis %s link failed (%s: %s); local delivery continues, "
                "reconnecting with back-off",
                link,
                type(exc).__name__,
                exc,
            )
        self._down.add(link)

    def recovered(self, link: str) -> None:
        if link in self._down:
            self._down.discard(link)
            if not self._down:
                logger.warning(
                    "Redis reachable again after %.1f s; %d messages could not be published",
                    time.monotonic() - self._since,
                    self.dropped,
                )
