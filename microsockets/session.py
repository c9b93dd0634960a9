"""One event connection from handshake to cleanup: the receive loop and handler dispatch."""

from __future__ import annotations

import asyncio
import logging
import math
import sys
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidPayload, LimitExceeded, ProtocolError, Reject
from .protocol import ACK, PING, PONG
from .ratelimit import RateLimit
from .socket import Socket, current_socket

if TYPE_CHECKING:
    from .application import Application

logger = logging.getLogger("microsockets")

POLICY_VIOLATION = 1008


async def serve(app: Application, ws: Socket) -> None:
    """Admit the connection, run its frames through the handlers, clean up after it."""
    if not await _admit(app, ws):
        return
    await app.room_manager.connect(ws)
    task = asyncio.current_task()
    assert task is not None
    app.connections[ws.id] = ws._session = task
    current_socket.set(ws)
    if app.watchdog is not None:
        app.watchdog.start()
    try:
        await _receive_loop(app, ws)
    except asyncio.CancelledError:
        if ws.id not in app.evicted:
            raise
        _uncancel(task)
    finally:
        ws._session = None
        app.connections.pop(ws.id, None)
        app.evicted.discard(ws.id)
        await _cleanup(app, ws)


async def _admit(app: Application, ws: Socket) -> bool:
    """Check origin, capacity and the on_connect hooks, then accept; False if refused."""
    refusal = app.refusal(ws)
    try:
        if refusal is not None:
            raise refusal
        for hook in app.hooks.on_connect:
            await hook(ws)
    except Reject as exc:
        logger.info("refused %s from %s: %s", ws.path, ws.client, exc.reason)
        await ws.reject(exc.status, exc.reason)
        return False
    except Exception:
        logger.exception("on_connect hook raised; refusing the handshake with HTTP 500")
        await ws.reject(500, "internal error")
        return False
    try:
        await ws.accept()
    except OSError:  # the client left during on_connect (uvicorn: ClientDisconnected)
        return False
    return True


async def _receive_loop(app: Application, ws: Socket) -> None:
    """Check each frame, answer pings and bad frames, run the handlers one at a time in order.

    This runs once per frame, so the handler is called from here rather than from a helper
    coroutine (that helper and its watchdog calls were a tenth of our own time per frame,
    bench/inprocess.py; docs/performance.md).
    """
    receive, protocol, router, hooks = ws._receive, app.protocol, app.router, app.hooks
    before_on, outbox, loop = hooks.before_on, ws._outbox, asyncio.get_running_loop()
    rate, burst = app.rate_limit, app.rate_burst
    limit = None if rate is None else RateLimit(rate, burst or rate, loop.time())
    never = math.inf
    budget = never if app.watchdog is None else app.watchdog.timeout
    bad_frames = 0
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            if message["type"] == "websocket.disconnect":
                ws._closed_by_peer(message)
                return
            continue
        now = loop.time()
        try:
            text = message.get("text")
            if text is None:
                raise protocol.binary_error(message.get("bytes") or b"")
            event, payload, ack_id = protocol.decode(text)  # first: bad frames pay the rate too
            del message, text  # an idle connection holds no old frame
            if limit is not None and not limit.allow(now):
                raise ProtocolError(
                    "rate_limited", f"more than {rate:g} messages a second", ack_id=ack_id
                )
            handler = router(event)
            if handler is None and event != PING:
                raise ProtocolError(
                    "unknown_event", f"no handler for event {event!r}", ack_id=ack_id
                )
        except ProtocolError as exc:
            bad_frames += 1
            await _refuse(app, ws, exc, bad_frames)
            continue
        if handler is None:
            bad_frames = 0
            await outbox.send(protocol.encode(PONG, payload))
            continue
        ws.event, ws.payload = event, payload
        ws._deadline = now + budget
        try:
            result = await (hooks.run_handler(ws, handler) if before_on else handler(ws))
            answer = None if ack_id is None else protocol.encode(ACK, result, ack_id)
            bad_frames = 0
        except InvalidPayload as exc:  # a typed handler refused the payload: a bad frame
            bad_frames += 1
            answer = protocol.encode_error(exc.code, exc.message, ack_id)
        except (Exception, asyncio.CancelledError) as exc:
            bad_frames = 0
            answer = _failure(app, ws, event, ack_id, exc)
        ws._deadline = never
        if ws._timed_out:  # the watchdog cancelled the handler, which raised or swallowed that
            ws._timed_out = False
            _uncancel(asyncio.current_task())
        if answer is not None:
            await outbox.send(answer)
        if bad_frames and bad_frames >= app.max_bad_frames:
            await _too_many(ws, bad_frames)


async def _refuse(app: Application, ws: Socket, exc: ProtocolError, bad_frames: int) -> None:
    """Answer a refused frame with an error reply; close for the worst ones and repeat offenders."""
    if exc.close_code is not None:
        logger.info("closing %s with %d: %s", ws.id, exc.close_code, exc.message)
        await ws.close(exc.close_code, exc.message[:120])
        return
    await ws._outbox.send(app.protocol.encode_error(exc.code, exc.message, exc.ack_id))
    if bad_frames >= app.max_bad_frames:
        await _too_many(ws, bad_frames)


async def _too_many(ws: Socket, bad_frames: int) -> None:
    """Close a connection that sent `max_bad_frames` bad frames in a row."""
    logger.info("closing %s: %d bad frames in a row", ws.id, bad_frames)
    await ws.close(POLICY_VIOLATION, f"{bad_frames} bad frames in a row")


def _failure(
    app: Application, ws: Socket, event: str, ack_id: int | None, exc: BaseException
) -> str | None:
    """The error reply to a handler that raised; None if the client asked for no ack.

    Re-raises a cancellation that did not come from the watchdog: the session is ending.
    """
    if isinstance(exc, asyncio.CancelledError):
        if not ws._timed_out:
            raise exc
        logger.error("handler of %r ran past handler_timeout=%gs", event, app.handler_timeout)
        code, message = "handler_timeout", f"handler ran past {app.handler_timeout:g}s"
    elif isinstance(exc, LimitExceeded):
        return app.protocol.encode_error(exc.code, exc.message, ack_id)
    else:
        logger.error("handler of %r raised", event, exc_info=exc)
        code, message = "handler_error", repr(exc) if app.debug else "internal error"
    return None if ack_id is None else app.protocol.encode_error(code, message, ack_id)


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """Forget a cancellation this module requested and handled (Python 3.11+ counts them)."""
    if sys.version_info >= (3, 11) and task is not None:
        task.uncancel()


async def _cleanup(app: Application, ws: Socket) -> None:
    """Leave every room, stop sending, then run the on_disconnect hooks, whatever happened."""
    ws._outbox.abandon()
    try:
        await app.room_manager.disconnect(ws)
    finally:
        for hook in app.hooks.on_disconnect:
            try:
                await hook(ws)
            except Exception:
                logger.exception("on_disconnect hook %r raised", hook)
