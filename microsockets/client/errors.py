"""The client's own failures; the server's refusals are ErrorReply (microsockets.exceptions)."""

from __future__ import annotations

from ..exceptions import ConnectionClosedError, MicrosocketsError

__all__ = ["BufferFull", "Disconnected"]


class Disconnected(ConnectionClosedError):
    """The connection carrying a request was lost before its answer came; the socket
    reconnects by itself. Retry the request if it is safe to run twice."""


class BufferFull(MicrosocketsError):
    """`send` while not connected and the send buffer is full: the frame was not queued.

    Wait for the connection (`on_open`), or raise `send_buffer_size`.
    """

    code = "buffer_full"
