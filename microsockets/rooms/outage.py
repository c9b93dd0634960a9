"""The outage tracker: one warning when a back-end's first link fails, one when all recover."""

from __future__ import annotations

import logging
import time


class Outage:
    """Logs an outage of `service` once when it starts and once when it ends, not per failure."""

    def __init__(self, service: str, logger: logging.Logger) -> None:
        self.service = service
        self.dropped = 0
        """Publications lost since the outage started (or since the last one ended)."""
        self._dropped_before = 0
        self._logger = logger
        self._down: set[str] = set()
        self._since = 0.0

    @property
    def active(self) -> bool:
        """Whether some link is down."""
        return bool(self._down)

    @property
    def dropped_total(self) -> int:
        """Publications lost since the tracker was made, every outage included."""
        return self._dropped_before + self.dropped

    def is_down(self, link: str) -> bool:
        return link in self._down

    def failed(self, link: str, exc: BaseException) -> None:
        if not self._down:
            self._since = time.monotonic()
            self._dropped_before += self.dropped
            self.dropped = 0
            self._logger.warning(
                "%s %s link failed (%s: %s); local delivery continues, reconnecting with back-off",
                self.service,
                link,
                type(exc).__name__,
                exc,
            )
        self._down.add(link)

    def recovered(self, link: str) -> None:
        if link in self._down:
            self._down.discard(link)
            if not self._down:
                self._logger.warning(
                    "%s reachable again after %.1f s; %d messages could not be published",
                    self.service,
                    time.monotonic() - self._since,
                    self.dropped,
                )
