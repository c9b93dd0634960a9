"""The requests waiting for their `ms:ack` or `ms:error`, by acknowledgement id."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..exceptions import ErrorReply
from ..protocol import ACK, MAX_ID
from ..types import JSON

__all__ = ["PendingRequests"]


@dataclass
class _Request:
    event: str
    future: asyncio.Future[JSON]
    sent: bool = field(default=False)


class PendingRequests:
    """Owns the ids and futures of unanswered requests; the Socket settles them."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Request] = {}
        self._last_id = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, event: str) -> tuple[int, asyncio.Future[JSON]]:
        """A new id, from 1 up to MAX_ID then round again, and the future of its answer."""
        self._last_id = 1 if self._last_id >= MAX_ID else self._last_id + 1
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._by_id[self._last_id] = _Request(event, future)
        return self._last_id, future

    def mark_sent(self, ack_id: int) -> None:
        """The frame of `ack_id` went out on the current connection."""
        request = self._by_id.get(ack_id)
        if request is not None:
            request.sent = True

    def forget(self, ack_id: int) -> None:
        """Drop `ack_id` (timed out or cancelled); a late answer is then ignored."""
        self._by_id.pop(ack_id, None)

    def answer(self, event: str, ack_id: int, payload: JSON) -> None:
        """Settle `ack_id` with the server's `ms:ack` or `ms:error`."""
        request = self._by_id.pop(ack_id, None)
        if request is None or request.future.done():
            return  # timed out already
        if event == ACK:
            request.future.set_result(payload)
            return
        body = payload if isinstance(payload, dict) else {}
        code, message = body.get("code"), body.get("message")
        request.future.set_exception(
            ErrorReply(
                code if isinstance(code, str) else "server_error",
                message if isinstance(message, str) else repr(payload),
            )
        )

    def fail(self, error: Exception, *, sent_only: bool) -> None:
        """Fail the requests whose frame went out (`sent_only`), or all of them."""
        for ack_id, request in list(self._by_id.items()):
            if request.sent or not sent_only:
                del self._by_id[ack_id]
                if not request.future.done():
                    request.future.set_exception(error)
