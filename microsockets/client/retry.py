"""Which closes the Socket retries: not the ones a retry would repeat (the JS client's list),
and refusals (4000 + HTTP status) only when a retry may be let in."""

from __future__ import annotations

__all__ = ["MAX_REFUSALS", "NO_RETRY_CLOSE_CODES", "RetryPolicy"]

NO_RETRY_CLOSE_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})
"""Close codes after which reconnecting would not help (the JS client's list): protocol and
data errors, a policy violation, a message too big, a missing extension, and a 1000 the user
did not ask for (the application closed on purpose). Every other code retries."""
MAX_REFUSALS = 3
"""4401/4403 refusals retried in a row with fresh `params` from a function, then final."""


class RetryPolicy:
    """Counts the 4401/4403 refusals in a row, so fresh credentials get MAX_REFUSALS tries."""

    def __init__(self) -> None:
        self._refusals = 0

    def retries(self, code: int, *, fresh_params: bool) -> bool:
        """Whether a close with `code` is worth another attempt; `fresh_params` when the next
        attempt calls a params function (new credentials)."""
        if code in NO_RETRY_CLOSE_CODES:
            return False
        if not 4400 <= code <= 4599 or _retries_with_backoff(code):
            return True
        if code not in (4401, 4403) or not fresh_params:
            return False
        self._refusals += 1
        return self._refusals <= MAX_REFUSALS

    def opened(self) -> None:
        """A connection opened: the refusals in a row start over."""
        self._refusals = 0


def _retries_with_backoff(code: int) -> bool:
    """Refusals (4400-4599) worth another attempt later: too many requests, server trouble."""
    return code == 4429 or code >= 4500
