"""Serving event connections, from handshake to cleanup: the receive loop and handler dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Callable
from typing import Any

from .codes import SESSION_RESUMED, CloseCode
from .connection import Connection
from .events import Router
from .exceptions import InvalidPayload, LimitExceeded, ProtocolError, Reject
from .hooks import Hooks
from .limits import Limits
from .logs import log
from .observer import NO_OBSERVER, Observer
from .protocol import ACK, PING, PONG, SESSION, Protocol
from .ratelimit import RateLimit
from .recovery import Claim, Resumed, offset_key, offset_of
from .registry import Registration, Registry
from .rooms import BaseRoomManager
from .rooms.presence import GRACE as PRESENCE_GRACE
from .socket import Socket, current_socket
from .types import Receive
from .watchdog import Watchdog

Refusal = Callable[[Connection], "Reject | None"]
"""Why a handshake must be refused before any hook runs (origin, shutdown, capacity); it
logs the refusal itself."""

YIELD_EVERY = 32
"""Frames a session handles before it lets other tasks run, when its backlog never runs dry
(each yield costs a pass of the event loop: docs/performance.md)."""

BAD_FRAMES_WINDOW = 10.0
BAD_FRAMES_PER_WINDOW = 10
"""Beside `max_bad_frames` in a row, a connection closes at this many times `max_bad_frames`
bad frames within BAD_FRAMES_WINDOW seconds, good frames between them or not."""


class Session:
    """Runs every event connection of an application: one `serve` call per connection."""

    def __init__(
        self,
        *,
        protocol: Protocol,
        router: Router,
        hooks: Hooks,
        limits: Limits,
        rooms: BaseRoomManager,
        registry: Registry,
        refusal: Refusal,
        debug: bool = False,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self.protocol = protocol
        self.router = router
        self.hooks = hooks
        self.limits = limits
        self.rooms = rooms
        self.registry = registry
        self.refusal = refusal
        self.debug = debug
        self.observer = observer
        window = limits.recovery_window
        self.recovery = (
            None
            if window is None
            else rooms.session_store(window, limits.recovery_max_messages, self.end)
        )
        """The sessions kept for reconnects, and their log (None: recovery is off)."""
        timeout = limits.handler_timeout
        self.watchdog = None if timeout is None else Watchdog(timeout, registry)

    async def serve(self, ws: Socket) -> None:
        """Admit the connection, run its frames through the handlers, clean up after it.

        It is registered from the start, so a handshake still in its on_connect hooks counts
        against max_connections.
        """
        registration = self.registry.add(ws)
        try:
            store = self.recovery
            claim = None if store is None else Claim.of(ws.query_params)
            ws.resumed = claim is not None and store is not None and await store.valid(claim)
            if not await self._admit(ws):
                return
            resumed = await self._resume(ws, claim, registration)
            held = None if resumed is None else ws.hold()
            await self.rooms.connect(ws)
            for room in ws.rooms - {ws.id}:  # joined by an on_connect hook, or resumed
                await self.rooms.join(ws, room)
            for room, meta in ws.presence.items():  # likewise, joined with presence=
                await self.rooms.track(ws, room, meta)
            if resumed is not None and held is not None:
                await self.rooms.resume_presence(ws)  # nobody saw it leave: nothing to announce
                await self._replay(ws, resumed, held)
            current_socket.set(ws)
            if self.watchdog is not None:
                self.watchdog.start()
            try:
                await self._receive_loop(ws, registration)
            except asyncio.CancelledError:
                if not registration.evicted:  # the server is dropping the connection
                    await ws.go_away()
                    raise
                _uncancel(registration.task)
            finally:
                await self._cleanup(ws)
        finally:
            self.registry.remove(registration)

    async def _resume(
        self, ws: Socket, claim: Claim | None, registration: Registration
    ) -> Resumed | None:
        """Take over the session a claim names, if it can be recovered whole; then announce
        the session (`ms:session`) to a client that speaks `ms_v=2`."""
        store, resumed = self.recovery, None
        if store is not None and claim is not None and ws.resumed:
            await self._close_holder(claim)
            resumed = await store.take(claim)
        if resumed is not None:
            fresh_id = ws.id
            ws.restore(resumed.id, resumed.rooms, resumed.state)
            self.registry.renamed(registration, fresh_id)
            self.observer.session_recovered()
        else:
            ws.resumed = False
            if claim is not None:
                self.observer.session_not_recovered()
        token = None if store is None else await store.open(ws)
        if _speaks_2(ws):
            ws.send_frame(
                self.protocol.encode(
                    SESSION, {"id": ws.id, "token": token, "recovered": resumed is not None}
                )
            )
        return resumed

    async def _replay(self, ws: Socket, resumed: Resumed, held: list[str]) -> None:
        """Send what the session missed, then the frames delivered while it joined its
        rooms, each once: those the log also gave are left out by their offset."""
        assert self.recovery is not None
        missed = resumed.missed + await self.recovery.catch_up(resumed)
        last = offset_of(missed[-1]) if missed else resumed.last
        newest = offset_key(last or "0")
        ws.release()
        for frame in missed:
            ws.send_frame(frame)
        for frame in held:
            offset = offset_of(frame)
            if offset is None or offset_key(offset) > newest:
                ws.send_frame(frame)

    async def _close_holder(self, claim: Claim) -> None:
        """Close the connection of this process that still holds a session being resumed
        (a half-open one), and wait for it to end."""
        registration = self.registry.registration(claim.id)
        holder = None if registration is None else registration.connection
        if registration is None or not isinstance(holder, Socket) or holder.closed:
            return
        log(holder, logging.INFO, "session resumed by a new connection: closing this one")
        self.registry.evict(holder, SESSION_RESUMED, "session resumed by another connection")
        await asyncio.wait([registration.task])

    async def _admit(self, ws: Socket) -> bool:
        """Check origin, capacity and the on_connect hooks, then accept; False if refused."""
        refusal = self.refusal(ws)  # logged there
        if refusal is not None:
            await ws.reject(refusal.status, refusal.reason)
            return False
        try:
            for hook in self.hooks.on_connect:
                await hook(ws)
        except Reject as exc:
            log(ws, logging.INFO, "refused %r: %r", ws.path, exc.reason)
            await self._reject(ws, exc.status, exc.reason)
            return False
        except Exception:
            message = "on_connect hook raised; refusing the handshake with HTTP 500"
            log(ws, logging.ERROR, message, exc_info=True)
            await self._reject(ws, 500, "internal error")
            return False
        try:
            await ws.accept()
        except OSError:  # the client left during on_connect (uvicorn: ClientDisconnected)
            return False
        return True

    async def _reject(self, ws: Socket, status: int, reason: str) -> None:
        """An HTTP status, or a close code a browser can read when the client sent ms_v=2."""
        if _speaks_2(ws):
            with contextlib.suppress(OSError):
                await ws.refuse(status, reason)
        else:
            await ws.reject(status, reason)

    async def _receive_loop(self, ws: Socket, registration: Registration) -> None:
        """Check each frame, answer pings and bad frames, run the handlers one at a time in order.

        This runs once per frame, so the handler is called from here rather than from a helper
        coroutine (docs/performance.md). The rate is checked before a frame is decoded, the
        loop yields every YIELD_EVERY frames (the server's queue hands over a backlog without
        suspending), and once the connection is closing no frame is looked at again.
        """
        # The session is the one driver of the connection's ASGI receive channel (and records
        # its end below); a method call per frame instead costs measurably (performance.md).
        receive, protocol, router, hooks = ws._receive, self.protocol, self.router, self.hooks
        outbox, loop = ws.outbox, asyncio.get_running_loop()
        before_on, reply = hooks.before_on, outbox.send
        limits = self.limits
        rate, burst, byte_rate = limits.rate_limit, limits.rate_burst, limits.byte_rate_limit
        limit = None if rate is None else RateLimit(rate, burst or rate, loop.time())
        byte_limit = None if byte_rate is None else RateLimit(byte_rate, byte_rate, loop.time())
        budget = math.inf if self.watchdog is None else self.watchdog.timeout
        bad_frames = 0  # in a row; the window is counted by `judge`, only for bad frames
        judge = BadFrames(limits.max_bad_frames)
        turn = YIELD_EVERY
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                if message["type"] == "websocket.disconnect":
                    ws._closed_by_peer(message)
                    return
                continue
            if outbox.closing:  # closed by us, or the peer is gone: no frame is worth reading
                await _discard_until_disconnect(ws, receive)
                return
            turn -= 1
            if not turn:
                turn = YIELD_EVERY
                await asyncio.sleep(0)
            now = loop.time()
            try:
                if limit is not None and not limit.allow(now):  # first: no decoding past the rate
                    raise ProtocolError("rate_limited", f"more than {rate:g} messages a second")
                text = message.get("text")
                if text is None:
                    raise protocol.binary_error(message.get("bytes") or b"")
                if byte_limit is not None and not byte_limit.allow(now, len(text)):
                    raise ProtocolError("rate_limited", f"more than {byte_rate:.0f} bytes a second")
                event, payload, ack_id = protocol.decode(text)
                del message, text  # an idle connection holds no old frame
                handler = router(event)
                if handler is None and event != PING:
                    raise ProtocolError(
                        "unknown_event", f"no handler for event {event!r}", ack_id=ack_id
                    )
            except ProtocolError as exc:
                bad_frames += 1
                await self._refuse(ws, exc, judge.verdict(now, bad_frames))
                continue
            if handler is None:
                bad_frames = 0
                try:
                    pong = protocol.encode(PONG, payload)
                except TypeError:  # a custom codec that reads what it cannot write
                    pong = protocol.encode_error(
                        "invalid_frame", "payload cannot be echoed", ack_id
                    )
                await reply(pong)
                continue
            ws.event, ws.payload = event, payload
            registration.deadline = now + budget
            refused = None
            try:
                result = await (hooks.run_handler(ws, handler) if before_on else handler(ws))
                answer = None if ack_id is None else protocol.encode(ACK, result, ack_id)
            except InvalidPayload as exc:  # a typed handler refused the payload: a bad frame
                exc.ack_id, refused, answer = ack_id, exc, None
            except (Exception, asyncio.CancelledError) as exc:
                answer = self._failure(ws, registration, event, ack_id, exc)
            if registration.handled():  # the watchdog cancelled it, which raised or was swallowed
                _uncancel(registration.task)
            if refused is not None:
                bad_frames += 1
                await self._refuse(ws, refused, judge.verdict(now, bad_frames))
                continue
            bad_frames = 0
            if answer is not None:
                await reply(answer)

    async def _refuse(self, ws: Socket, exc: ProtocolError, close_for: str | None) -> None:
        """Answer a refused frame with an error reply; close for the worst ones, and for
        repeat offenders (`close_for` says why)."""
        self.observer.refused(exc.code)
        if exc.close_code is not None:
            log(ws, logging.INFO, "closing with %d: %s", exc.close_code, exc.message)
            ws.start_close(exc.close_code, exc.message[:120])
            return
        await ws.outbox.send(self.protocol.encode_error(exc.code, exc.message, exc.ack_id))
        if close_for is not None:
            log(ws, logging.INFO, "closing: %s", close_for)
            ws.start_close(CloseCode.POLICY_VIOLATION, close_for)

    def _failure(
        self,
        ws: Socket,
        registration: Registration,
        event: str,
        ack_id: int | None,
        exc: BaseException,
    ) -> str | None:
        """The error reply to a handler that raised; None if the client asked for no ack.

        Re-raises a cancellation that did not come from the watchdog: the session is ending.
        """
        protocol = self.protocol
        if isinstance(exc, asyncio.CancelledError):
            if not registration.timed_out:
                raise exc
            timeout = self.limits.handler_timeout
            log(ws, logging.ERROR, "handler of %r ran past handler_timeout=%gs", event, timeout)
            code, message = "handler_timeout", f"handler ran past {timeout:g}s"
        elif isinstance(exc, LimitExceeded):
            self.observer.refused(exc.code)
            return protocol.encode_error(exc.code, exc.message, ack_id)
        else:
            log(ws, logging.ERROR, "handler of %r raised", event, exc_info=exc)
            code, message = "handler_error", repr(exc) if self.debug else "internal error"
        self.observer.refused(code)
        return None if ack_id is None else protocol.encode_error(code, message, ack_id)

    async def _cleanup(self, ws: Socket) -> None:
        """Leave every room and stop sending; then end the session (its on_disconnect hooks),
        unless recovery keeps it for a reconnect."""
        ws.finish()
        store = self.recovery
        if store is not None and not ws.ended_cleanly:  # it may resume: keep it visible a while
            self.rooms.hold_presence(ws.id, PRESENCE_GRACE)
        try:
            await self.rooms.disconnect(ws)
        finally:
            if store is not None and ws.ended_cleanly:
                await store.close(ws)
            if store is None or ws.ended_cleanly or not await store.detach(ws):
                await self.end(ws)

    async def end(self, ws: Socket) -> None:
        """The session ended for good: run the on_disconnect hooks, whatever they raise."""
        for hook in self.hooks.on_disconnect:
            try:
                await hook(ws)
            except Exception:
                log(ws, logging.ERROR, "on_disconnect hook %r raised", hook, exc_info=True)


class BadFrames:
    """Judges a connection's bad frames: `max_bad_frames` in a row, or BAD_FRAMES_PER_WINDOW
    times as many within BAD_FRAMES_WINDOW seconds, close it. Consulted for bad frames only."""

    __slots__ = ("_in_window", "_most", "_window_ends")

    def __init__(self, most: int) -> None:
        self._most = most
        self._in_window = 0
        self._window_ends = 0.0

    def verdict(self, now: float, in_a_row: int) -> str | None:
        """Count one bad frame at `now`; why the connection must close, or None."""
        if now >= self._window_ends:
            self._window_ends, self._in_window = now + BAD_FRAMES_WINDOW, 0
        self._in_window += 1
        if in_a_row >= self._most:
            return f"{in_a_row} bad frames in a row"
        if self._in_window >= self._most * BAD_FRAMES_PER_WINDOW:
            return f"{self._in_window} bad frames in {BAD_FRAMES_WINDOW:g} s"
        return None


async def _discard_until_disconnect(ws: Socket, receive: Receive) -> None:
    """Take what the server still delivers, unread, until the peer's close arrives."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            ws._closed_by_peer(message)
            return


def _speaks_2(ws: Socket) -> bool:
    """Whether the client speaks protocol 2 (`ms_v=2`): it wants `ms:session` and reads
    refusals as close codes (docs/protocol.md)."""
    return ws.query_params.get("ms_v") == "2"


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """Forget a cancellation this module requested and handled (Python 3.11+ counts them)."""
    if sys.version_info >= (3, 11) and task is not None:
        task.uncancel()
