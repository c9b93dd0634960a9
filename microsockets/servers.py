"""What differs between ASGI servers, handled in one place (docs/deployment.md has the table).

uvicorn, hypercorn, granian and daphne all speak ASGI, but differ in what a send on a closed
connection raises, which close codes an app may send, and what their own log says about
things a client does on purpose. Everything else in the package is server-agnostic.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from .types import Message, Send

SEND_FAILED: tuple[type[Exception], ...] = (OSError, RuntimeError)
"""What a server's send raises once the connection is gone. uvicorn raises ClientDisconnected
(an OSError) when the peer left, and RuntimeError ("Unexpected ASGI message 'websocket.send',
after sending 'websocket.close'") once it closed the socket itself (1007, 1009, keepalive
timeout, 1012); hypercorn, granian and daphne drop such sends silently. Only the server's own
send is guarded with it: our messages are well formed, so nothing else raises these there."""


def uniform_send(send: Send) -> Send:
    """The server's send, or on daphne a wrapper that can close with any code and reason.

    daphne hands a close to autobahn's `sendClose`, which refuses every code but 1000 and
    3000-4999 (it raises, and no close frame leaves) and drops the reason; 1001, 1008, 1009,
    1011 and 1013 are ours to send (RFC 6455 section 7.4.1). daphne's send is
    `partial(server.handle_reply, protocol)`: the close goes to that autobahn protocol's
    `sendCloseFrame` instead, the call autobahn itself uses for protocol errors.
    """
    protocol = _autobahn_protocol(send)
    if protocol is None:
        return send

    async def daphne_send(message: Message) -> None:
        if message["type"] == "websocket.close" and protocol.state == protocol.STATE_OPEN:
            reason = str(message.get("reason") or "").encode()[:123]  # a control frame's limit
            reason = reason.decode(errors="ignore").encode()  # whole characters only
            protocol.sendCloseFrame(code=message.get("code", 1000), reasonUtf8=reason)
            return
        await send(message)

    return daphne_send


def _autobahn_protocol(send: Send) -> Any:
    """daphne's autobahn protocol behind `send`, or None on every other server."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    return protocol if callable(getattr(protocol, "sendCloseFrame", None)) else None


def before_reactor_shutdown(callback: Callable[[], Coroutine[Any, Any, object]]) -> bool:
    """Have a running Twisted reactor (daphne's) await `callback` before it shuts down.

    daphne has no ASGI lifespan and drops every connection (1006) on SIGTERM; its own
    "before shutdown" trigger, which cancels the app, raises KeyError while any HTTP
    connection is between requests. A trigger of our own runs whatever that one does, and
    the reactor waits for it. False where no reactor runs (every other server).
    """
    reactor = getattr(sys.modules.get("twisted.internet"), "reactor", None)
    if reactor is None or not getattr(reactor, "running", False):
        return False
    from twisted.internet import defer

    def trigger() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(callback()))

    reactor.addSystemEventTrigger("before", "shutdown", trigger)
    return True


handshake_refused: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "microsockets_handshake_refused", default=False
)
"""Set in the connection's task when the app refused its handshake on purpose (Reject)."""


class QuietServerLog(logging.Filter):
    """Keeps uvicorn's log to one INFO line for what any client can cause at will.

    uvicorn (websockets-sansio) logs a client's invalid UTF-8 at ERROR with a traceback, and
    a handshake refused with an HTTP response (`Reject`) as "ASGI callable returned without
    completing handshake." at ERROR, although the refusal was sent. Both let a client flood
    the log; the first becomes an INFO line without traceback, the second is dropped for the
    handshakes this library refused (its own INFO line says why).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if message == "Invalid UTF-8 sequence received from client.":
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
            record.msg = "Invalid UTF-8 sequence received from client: closed with 1007."
            return True
        return not (
            message == "ASGI callable returned without completing handshake."
            and handshake_refused.get()
        )


def quiet_server_log() -> None:
    """Install QuietServerLog on uvicorn's error logger, once per process."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, QuietServerLog) for existing in logger.filters):
        logger.addFilter(QuietServerLog())
