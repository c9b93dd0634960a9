"""The client's side of session recovery (docs/protocol.md): who the server said we are,
the single-use resume token, and the offset of the last logged frame received."""

from __future__ import annotations

from ..types import JSON

__all__ = ["SESSION", "Session"]

SESSION = "ms:session"
"""The server's first frame to a protocol-2 client: the session id, its resume token, and
whether it was recovered."""


class Session:
    """One Socket's session: set by each `ms:session` frame, claimed by each reconnect."""

    def __init__(self) -> None:
        self.id = ""
        """The session id, the server's `ws.id` ("" before the first open)."""
        self.recovered = False
        """Whether the last open resumed the session with nothing missed."""
        self._token: str | None = None
        self._offset = ""

    def opened(self, payload: JSON) -> None:
        """The server's `ms:session` payload: the session opened or resumed."""
        body = payload if isinstance(payload, dict) else {}
        self.recovered = body.get("recovered") is True
        if not self.recovered:
            self._offset = ""
        session_id, token = body.get("id"), body.get("token")
        self.id = session_id if isinstance(session_id, str) else ""
        self._token = token if isinstance(token, str) else None

    def received(self, offset: str) -> None:
        """A logged frame arrived with offset `offset` (its `"o"`)."""
        self._offset = offset

    def claim(self) -> dict[str, str]:
        """The query parameters of the next attempt: the protocol version and, once the
        server gave a token, the resume claim."""
        if self._token is None:
            return {"ms_v": "2"}
        return {"ms_v": "2", "ms_id": self.id, "ms_token": self._token, "ms_offset": self._offset}
