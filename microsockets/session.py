"""One event connection from handshake to cleanup: the receive loop and handler dispatch."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from .exceptions import LimitExceeded, ProtocolError, Reject
from .protocol import ACK, PING, PONG, Frame
from .ratelimit import TokenBucket
from .socket import Socket

if TYPE_CHECKING:
    from .application import Application
    from .router import Handler

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
    """Decode and check each frame, answer pings and bad frames, dispatch the rest in order."""
    protocol, router, receive = app.protocol, app.router, ws._receive
    reply, encode_error = ws._outbox.send, protocol.encode_error
    loop = asyncio.get_running_loop()
    rate = app.rate_limit
    bucket = None if rate is None else TokenBucket(rate, app.rate_burst or rate, loop.time())
    bad_frames = 0
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            if message["type"] == "websocket.disconnect":
                ws._closed_by_peer(message)
                return
            continue
        over_rate = bucket is not None and not bucket.take(loop.time())  # bad frames pay too
        text = message.get("text")
        ack_id = None
        try:
            if text is None:
                raise protocol.binary_error(message.get("bytes") or b"")
            frame = protocol.decode(text)
            ack_id = frame.id
            if over_rate:
                raise ProtocolError("rate_limited", f"more than {rate:g} messages a second")
            if frame.event == PING:
                await reply(protocol.encode(PONG, frame.payload))
                bad_frames = 0
                continue
            handler = router(frame.event)
            if handler is None:
                raise ProtocolError("unknown_event", f"no handler for event {frame.event!r}")
        except ProtocolError as exc:
            if exc.close_code is not None:
                logger.info("closing %s with %d: %s", ws.id, exc.close_code, exc.message)
                await ws.close(exc.close_code, exc.message[:120])
                continue
            await reply(encode_error(exc.code, exc.message, ack_id or exc.ack_id))
            bad_frames += 1
            if bad_frames >= app.max_bad_frames:
                logger.info("closing %s: %d bad frames in a row", ws.id, bad_frames)
                await ws.close(POLICY_VIOLATION, f"{bad_frames} bad frames in a row")
            continue
        bad_frames = 0
        await _dispatch(app, ws, handler, frame)


async def _dispatch(app: Application, ws: Socket, handler: Handler, frame: Frame) -> None:
    """Run one handler; its return value is the ack, its exception an error reply."""
    ws.event, ws.payload = frame.event, frame.payload
    protocol, watchdog, task = app.protocol, app.watchdog, ws._session
    if watchdog is not None and task is not None:
        watchdog.arm(task, asyncio.get_running_loop().time())
    try:
        hooks = app.hooks
        result = await (hooks.run_handler(ws, handler) if hooks.before_on else handler(ws))
        if frame.id is not None:
            await ws._outbox.send(protocol.encode(ACK, result, frame.id))
        return
    except asyncio.CancelledError:
        if watchdog is None or task is None or not watchdog.disarm(task):
            raise
        _uncancel(task)
        logger.error("handler of %r ran past handler_timeout=%gs", frame.event, watchdog.timeout)
        if frame.id is None:
            return
        code, message = "handler_timeout", f"handler ran past {watchdog.timeout:g}s"
    except LimitExceeded as exc:
        code, message = exc.code, exc.message
    except Exception as exc:
        logger.error("handler of %r raised", frame.event, exc_info=exc)
        if frame.id is None:
            return
        code, message = "handler_error", repr(exc) if app.debug else "internal error"
    finally:
        if watchdog is not None and task is not None and watchdog.disarm(task):
            _uncancel(task)  # the handler swallowed the watchdog's cancellation
    await ws._outbox.send(protocol.encode_error(code, message, frame.id))


def _uncancel(task: asyncio.Task[None]) -> None:
    """Forget a cancellation this module requested and handled (Python 3.11+ counts them)."""
    if sys.version_info >= (3, 11):
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
