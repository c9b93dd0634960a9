"""The exceptions microsockets raises, as a small tree under `MicrosocketsError`."""

from __future__ import annotations


class MicrosocketsError(Exception):
    """Base class of every exception this library raises on purpose."""


class ProtocolError(MicrosocketsError):
    """A frame broke the wire protocol.

    `code` is the error code the client receives; `close_code`, when set, is the WebSocket
    close code the connection ends with instead of an error reply; `ack_id` is the valid
    id of a frame refused for another reason, so its error reply can carry it.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        close_code: int | None = None,
        ack_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code
        self.ack_id = ack_id


class InvalidPayload(ProtocolError):
    """A payload did not validate against its handler's type; the client gets `invalid_payload`.

    The message names each failing field by path (`$.user: field required`). Typed handlers
    raise it before they run; a handler may raise it too.
    """

    def __init__(self, message: str) -> None:
        super().__init__("invalid_payload", message)


class ConnectionClosed(MicrosocketsError):
    """The connection is closed: raised by receive and send once the peer has gone."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"connection closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class WebSocketStateError(MicrosocketsError, RuntimeError):
    """A socket was used in a state that does not allow the call (say, sending before accept)."""


class Reject(MicrosocketsError):
    """Raise in an `on_connect` hook to refuse the handshake; the client gets HTTP `status`.

    Servers without the ASGI "websocket.http.response" extension always answer 403.
    """

    def __init__(self, reason: str = "forbidden", status: int = 403) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class LimitExceeded(MicrosocketsError):
    """A per-connection limit (rooms, rate) was reached; the client gets an error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ErrorReply(MicrosocketsError):
    """The server answered a request with an `ms:error` frame; `code` says why
    (docs/protocol.md lists the codes), `message` says it in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a closing handshake."""


def connection_closed(code: int, reason: str = "") -> ConnectionClosed:
    """The ConnectionClosed subclass that fits a close code."""
    cls = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
    return cls(code, reason)
