"""The client Socket: one logical connection to a microsockets server, made of as many
WebSocket connections as reconnecting takes (the JS client's MicroSocket, in asyncio).

It reconnects with back-off, buffers sends while disconnected, pings, times requests out,
resumes its session (docs/protocol.md) and calls `on_open` / `on_close` on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, overload
from urllib.parse import urlsplit

from ..contract.models import is_any, validator
from ..exceptions import ConnectionClosed, ProtocolError, connection_closed
from ..protocol import ACK, ERROR, PING, PONG, PRESENCE, PRESENCE_STATE, check_event_name
from ..types import JSON
from .backoff import DEFAULT_RECONNECT_DELAYS, reconnect_delay
from .codec import decode, encode
from .errors import BufferFull, Disconnected
from .handlers import Handlers, call, run
from .heartbeat import Heartbeat, Sleep
from .inbox import Inbox
from .params import ParamsSource, attempt_url, fresh_params
from .presence import PresenceHandler, PresenceRooms
from .requests import PendingRequests
from .retry import RetryPolicy
from .session import SESSION, Session
from .transport import Opener, Transport, open_websocket

__all__ = ["HEARTBEAT_TIMEOUT_CODE", "Socket", "connect"]

log = logging.getLogger("microsockets.client")

HEARTBEAT_TIMEOUT_CODE = 4000
"""The close code the client reports (and sends) when the heartbeat finds the connection dead."""
T = TypeVar("T")

CONNECTING, OPEN, CLOSING, CLOSED = "connecting", "open", "closing", "closed"


class Socket:
    """A microsockets connection that survives lost connections; use it with `async with`.

    Options, defaults and meaning as in the JS client (docs/python-client.md), in seconds.
    `opener`, `sleep` and `random` are there for tests (a fake transport, fake time).
    """

    def __init__(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        params: ParamsSource | None = None,
        reconnect: bool = True,
        reconnect_delays: Sequence[float] = DEFAULT_RECONNECT_DELAYS,
        reconnect_jitter: float = 0.5,
        send_buffer_size: int = 100,
        request_timeout: float = 10.0,
        heartbeat_interval: float = 20.0,
        heartbeat_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        receive_buffer_size: int = 1000,
        on_open: Callable[[], object] | None = None,
        on_close: Callable[[int, str], object] | None = None,
        opener: Opener = open_websocket,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if urlsplit(url).scheme not in ("ws", "wss"):
            raise ValueError(f"a microsockets URL starts with ws:// or wss://, not {url!r}")
        self.url = url
        self.subprotocols = tuple(subprotocols)
        self.params = params
        self.reconnect = reconnect
        self.reconnect_delays = tuple(reconnect_delays)
        self.reconnect_jitter = reconnect_jitter
        self.send_buffer_size = send_buffer_size
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.on_open = on_open
        self.on_close = on_close
        self.close_code: int | None = None
        """The close code once the socket closed for good."""
        self.close_reason = ""
        self._opener = opener
        self._sleep = sleep
        self._random = random
        self._state = CONNECTING
        self._transport: Transport | None = None
        self._abandoned: tuple[int, str] | None = None
        self._session = Session()
        self._retry = RetryPolicy()
        self._attempts = 0
        self._handlers = Handlers()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: deque[tuple[str, int | None]] = deque()
        self._inbox = Inbox(receive_buffer_size)
        self._presence = PresenceRooms()
        self._first_open = asyncio.Event()
        self._pending = PendingRequests()
        self._heartbeat = Heartbeat(
            heartbeat_interval, heartbeat_timeout, self._ping, self._dead, sleep
        )
        self._runner: asyncio.Task[None] | None = None

    # The connection's life.

    async def __aenter__(self) -> Socket:
        """Connect, retrying as configured, until the first open; ConnectionClosed if the
        socket closes for good first (a refusal without a params function, say)."""
        self._runner = asyncio.ensure_future(self._run())
        await self._first_open.wait()
        if self._state == CLOSED:
            raise connection_closed(self.close_code or 1006, self.close_reason)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def id(self) -> str:
        """The session id, the server's `ws.id` ("" before the first open)."""
        return self._session.id

    @property
    def recovered(self) -> bool:
        """Whether the last open resumed the session with nothing missed (same id, same
        rooms, every missed frame delivered first). False after a reconnect: rejoin."""
        return self._session.recovered

    def presence(self, room: str) -> dict[str, JSON]:
        """Who is visible in a room this client joined, id -> meta, kept up to date from the
        server's presence frames (empty until the room's state arrived)."""
        return self._presence.state(room)

    def presence_count(self, room: str) -> int:
        """How many entries a room's presence has (the server's count in a counts-only room)."""
        return self._presence.count(room)

    def on_presence(self, room: str, handler: PresenceHandler) -> Callable[[], None]:
        """Call `handler(state, diff)` on each change of a room's presence; returns the function
        that stops it. `diff.joins` and `diff.leaves` map ids to metadata."""
        return self._presence.subscribe(room, handler)

    @property
    def connected(self) -> bool:
        """Whether a connection is open now (False while reconnecting)."""
        return self._state == OPEN

    @property
    def buffered(self) -> int:
        """Frames waiting in the send buffer for the next connection."""
        return len(self._queue)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close for good: no reconnect, the send buffer is dropped, pending requests raise
        ConnectionClosed. 1000 ends the session on the server (no resume)."""
        if code != 1000 and not 3000 <= code <= 4999:
            raise ValueError(f"close code must be 1000 or in 3000-4999, not {code}")
        if self._state in (CONNECTING, OPEN):
            self._state = CLOSING
            self.close_code, self.close_reason = code, reason
            self._queue.clear()
            self._pending.fail(
                ConnectionClosed(code, "the socket was closed by close()"), sent_only=False
            )
            if self._transport is not None:
                with contextlib.suppress(Exception):
                    await self._transport.close(code, reason)
            elif self._runner is not None:
                self._runner.cancel()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._state != CLOSED:  # never entered
            await self._finish(code, reason)
        for task in list(self._tasks):
            task.cancel()

    async def _run(self) -> None:
        """Connect, read until the connection ends, then reconnect or close for good."""
        try:
            while True:
                code, reason = await self._connection()
                retry = (
                    self._state != CLOSING
                    and self.reconnect
                    and self._retry.retries(code, fresh_params=callable(self.params))
                )
                self._pending.fail(
                    Disconnected(code, f"connection lost before the answer: {reason}"),
                    sent_only=True,
                )
                if not retry:
                    if self._state == CLOSING and self.close_code is not None:
                        code, reason = self.close_code, self.close_reason
                    await self._finish(code, reason)
                    return
                self._state = CONNECTING
                await call(self.on_close, code, reason)
                self._attempts += 1
                await self._sleep(
                    reconnect_delay(
                        self._attempts, self.reconnect_delays, self.reconnect_jitter, self._random
                    )
                )
        except asyncio.CancelledError:
            await self._finish(self.close_code or 1000, self.close_reason)

    async def _connection(self) -> tuple[int, str]:
        """One attempt and, once open, its reading loop; returns its close code and reason."""
        try:
            url = attempt_url(self.url, await fresh_params(self.params), self._session.claim())
            transport = await asyncio.wait_for(
                self._opener(url, self.subprotocols), self.connect_timeout or None
            )
        except ConnectionClosed as exc:  # a refused handshake
            return exc.code, exc.reason
        except (OSError, TimeoutError) as exc:
            return 1006, f"could not connect: {exc or 'timeout'}"
        except Exception as exc:  # the params function (or the opener) failed: retry later
            log.warning("connection attempt failed: %r", exc)
            return 1006, f"attempt failed: {exc!r}"
        self._transport, self._abandoned = transport, None
        self._heartbeat.start()
        waiting = asyncio.ensure_future(self._expect_session(transport))
        try:
            while True:
                self._receive_frame(await transport.recv())
        except ConnectionClosed as exc:
            return self._abandoned or (exc.code, exc.reason)
        finally:
            waiting.cancel()
            self._heartbeat.stop()
            self._transport = None

    async def _expect_session(self, transport: Transport) -> None:
        """Give up on a connection whose `ms:session` does not come within connect_timeout."""
        if self.connect_timeout <= 0:
            return
        await self._sleep(self.connect_timeout)
        if self._state != OPEN and self._transport is transport:
            log.warning("no ms:session frame from the server: does it speak protocol 2?")
            self._abandoned = (1006, "connect timeout: no ms:session frame")
            transport.abort()

    async def _finish(self, code: int, reason: str) -> None:
        """Closed for good: fail what waits, wake readers, tell on_close once."""
        if self._state == CLOSED:
            return
        self._state = CLOSED
        self.close_code, self.close_reason = code, reason
        self._queue.clear()
        self._pending.fail(connection_closed(code, reason), sent_only=False)
        self._inbox.close()
        self._first_open.set()
        await call(self.on_close, code, reason)

    def _opened(self, payload: JSON) -> None:
        """The server said who we are: the session opened or resumed."""
        self._session.opened(payload)
        self._retry.opened()
        self._state, self._attempts = OPEN, 0
        self._spawn(self._open_then_flush())

    async def _open_then_flush(self) -> None:
        # on_open first, so what it sends (joining rooms again) goes before the buffer.
        await call(self.on_open)
        self._first_open.set()
        while self._queue and self._state == OPEN:
            text, ack_id = self._queue.popleft()
            await self._transmit(text, ack_id)

    def _dead(self) -> None:
        """The heartbeat found the connection dead: drop it and reconnect."""
        if self._transport is not None:
            self._abandoned = (HEARTBEAT_TIMEOUT_CODE, "heartbeat timeout")
            self._transport.abort()

    async def _ping(self, count: int) -> None:
        if self._transport is not None:
            await self._transport.send(encode(PING, count))

    # Receiving.

    def _receive_frame(self, text: str) -> None:
        self._heartbeat.alive()
        try:
            frame = decode(text)
        except ProtocolError as exc:
            log.warning("ignored a frame that breaks the protocol: %s", exc.message)
            return
        if frame.offset is not None:
            self._session.received(frame.offset)
        if frame.event == PONG:
            return
        if frame.event == SESSION:
            self._opened(frame.payload)
        elif frame.event in (PRESENCE, PRESENCE_STATE):
            self._presence.receive(frame.event, frame.payload)
        elif frame.event in (ACK, ERROR) and frame.id is not None:
            self._pending.answer(frame.event, frame.id, frame.payload)
        elif handlers := self._handlers.of(frame.event):
            for handler in handlers:
                self._spawn(run(handler, frame.event, frame.payload))
        else:
            self._inbox.put(frame.event, frame.payload)

    @overload
    def on(self, event: str) -> Callable[[Callable[..., T]], Callable[..., T]]: ...
    @overload
    def on(self, event: str, handler: Callable[..., T]) -> Callable[..., T]: ...
    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        """Call `handler(payload)` (sync or async) for each `event` frame; a decorator too.

        A type annotation on the payload parameter (a pydantic or msgspec model, a dataclass,
        a TypedDict...) validates the payload into it, as for server handlers. Events with a
        handler do not reach `receive()`.
        """
        if not isinstance(event, str) or not event:
            raise ValueError(f"an event name is a non-empty string, not {event!r}")

        def register(func: Callable[..., T]) -> Callable[..., T]:
            self._handlers.add(event, func)
            return func

        return register if handler is None else register(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove one handler of `event`, or all of them when `handler` is omitted."""
        self._handlers.remove(event, handler)

    async def receive(self, timeout: float | None = None) -> tuple[str, JSON]:
        """The next (event, payload) without a handler; TimeoutError after `timeout`,
        ConnectionClosed once the socket closed for good and nothing is left."""
        item = await self._inbox.get(timeout)
        if item is None:
            raise connection_closed(self.close_code or 1000, self.close_reason)
        return item

    def __aiter__(self) -> AsyncIterator[tuple[str, JSON]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[str, JSON]]:
        while True:
            try:
                yield await self.receive()
            except ConnectionClosed:
                return

    # Sending.

    async def send(self, event: str, payload: Any = "") -> None:
        """Send `event` with `payload` (JSON, or a model instance). While not connected the
        frame waits in the send buffer; BufferFull when that is full, ConnectionClosed after
        the socket closed for good."""
        check_event_name(event)
        await self._transmit(encode(event, payload), None)

    @overload
    async def request(
        self, event: str, payload: Any = "", *, timeout: float | None = None
    ) -> JSON: ...
    @overload
    async def request(
        self, event: str, payload: Any = "", *, timeout: float | None = None, type: type[T]
    ) -> T: ...
    async def request(
        self,
        event: str,
        payload: Any = "",
        *,
        timeout: float | None = None,
        type: Any = None,
    ) -> Any:
        """Send `event` and return the server handler's answer, validated into `type` if
        given. Raises ErrorReply (the server's code), TimeoutError, Disconnected (the
        connection was lost after sending), ConnectionClosed or BufferFull."""
        check_event_name(event)
        validate = None if type is None or is_any(type) else validator(type, f"request {event!r}")
        seconds = self.request_timeout if timeout is None else timeout
        ack_id, future = self._pending.add(event)
        text = encode(event, payload, ack_id)
        try:
            await self._transmit(text, ack_id)
            reply = await asyncio.wait_for(future, seconds)
        except TimeoutError:
            raise TimeoutError(f"request {event!r} got no answer within {seconds}s") from None
        finally:
            self._pending.forget(ack_id)
            with contextlib.suppress(ValueError):
                self._queue.remove((text, ack_id))
        return reply if validate is None else validate(reply)

    async def _transmit(self, text: str, ack_id: int | None) -> None:
        """Send now when connected, else keep the frame in the bounded send buffer."""
        if self._state in (CLOSING, CLOSED):
            raise ConnectionClosed(
                self.close_code or 1000, "the socket is closed; connect again for a new one"
            )
        transport = self._transport
        if self._state == OPEN and transport is not None:
            try:
                await transport.send(text)
            except ConnectionClosed:
                pass  # lost just now: the frame waits for the next connection
            else:
                if ack_id is not None:
                    self._pending.mark_sent(ack_id)
                return
        if len(self._queue) >= self.send_buffer_size:
            raise BufferFull(
                f"send buffer full ({self.send_buffer_size} frames) while not connected; "
                "the frame was not queued"
            )
        self._queue.append((text, ack_id))

    # Helpers.

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def connect(url: str, **options: Any) -> Socket:
    """A Socket to `url`; `async with connect(url) as sock:` connects and closes it.

    The options are Socket's, with the JS client's names in Python spelling.
    """
    return Socket(url, **options)
