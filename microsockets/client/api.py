"""The socket API the real client and the in-process TestSocket share, so a test moves from
in-process to over-the-network by changing the line that opens the socket."""

from __future__ import annotations

from typing import Any, Protocol

from ..types import JSON

__all__ = ["SocketAPI"]


class SocketAPI(Protocol):
    """send, request, receive, close and close_code, alike on both sockets."""

    close_code: int | None

    async def send(self, event: str, payload: Any = "") -> None:
        """Send one event frame."""

    async def request(self, event: str, payload: Any = "", *, timeout: float = ...) -> JSON:
        """Send an event and return the server's answer; ErrorReply for an error reply."""

    async def receive(self, timeout: float | None = ...) -> tuple[str, JSON]:
        """The next (event, payload)."""

    async def close(self, code: int = 1000) -> None:
        """Close the connection."""
