"""The client Socket: one logical connection to a microsockets server, made of as many
WebSocket connections as reconnecting takes (the JS client's MicroSocket, in asyncio).

It reconnects with back-off, buffers sends while disconnected, pings, times requests out,
resumes its session (docs/protocol.md) and calls `on_open` / `on_close` on every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random as _random
import typing
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..contract.models import is_any, validator
from ..exceptions import ConnectionClosed, ProtocolError, connection_closed
from ..protocol import ACK, ERROR, PING, PONG, check_event_name
from ..types import JSON
from .backoff import DEFAULT_RECONNECT_DELAYS, reconnect_delay
from .codec import decode, encode
from .errors import BufferFull, Disconnected
from .heartbeat import Heartbeat, Sleep
from .requests import PendingRequests
from .transport import Opener, Transport, open_websocket

__all__ = [
    "HEARTBEAT_TIMEOUT_CODE",
    "MAX_REFUSALS",
    "NO_RETRY_CLOSE_CODES",
    "SESSION",
    "Params",
    "Socket",
    "connect",
]

log = logging.getLogger("microsockets.client")

SESSION = "ms:session"
"""The server's first frame to a protocol-2 client: the session id, its resume token, and
whether it was recovered."""
HEARTBEAT_TIMEOUT_CODE = 4000
"""The close code the client reports (and sends) when the heartbeat finds the connection dead."""
NO_RETRY_CLOSE_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})
"""Close codes after which reconnecting would not help (the JS client's list): protocol and
data errors, a policy violation, a message too big, a missing extension, and a 1000 the user
did not ask for (the application closed on purpose). Every other code retries."""
MAX_REFUSALS = 3
"""4401/4403 refusals retried in a row with fresh `params` from a function, then final."""

Params = Mapping[str, str | int | float]
ParamsSource = Params | Callable[[], Params | Awaitable[Params]]
T = TypeVar("T")

CONNECTING, OPEN, CLOSING, CLOSED = "connecting", "open", "closing", "closed"


def _retries_with_backoff(code: int) -> bool:
    """Refusals (4400-4599) worth another attempt later: too many requests, server trouble."""
    return code == 4429 or code >= 4500


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
        self.id = ""
        """The session id, the server's `ws.id` ("" before the first open)."""
        self.recovered = False
        """Whether the last open resumed the session with nothing missed (same id, same
        rooms, every missed frame delivered first). False after a reconnect: rejoin."""
        self.close_code: int | None = None
        """The close code once the socket closed for good."""
        self.close_reason = ""
        self._opener = opener
        self._sleep = sleep
        self._random = random
        self._state = CONNECTING
        self._transport: Transport | None = None
        self._abandoned: tuple[int, str] | None = None
        self._token: str | None = None
        self._offset = ""
        self._refusals = 0
        self._attempts = 0
        self._handlers: dict[str, list[tuple[Callable[..., Any], Callable[[JSON], Any] | None]]]
        self._handlers = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: deque[tuple[str, int | None]] = deque()
        self._inbox: deque[tuple[str, JSON]] = deque()
        self._inbox_size = receive_buffer_size
        self._inbox_changed = asyncio.Event()
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
                retry = self._state != CLOSING and self.reconnect and self._retries(code)
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
                await self._call(self.on_close, code, reason)
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
            url = self._attempt_url(await self._fresh_params())
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

    async def _fresh_params(self) -> Params:
        if self.params is None:
            return {}
        if not callable(self.params):
            return self.params
        result = self.params()
        return await result if inspect.isawaitable(result) else result

    def _attempt_url(self, params: Params) -> str:
        """The URL of one attempt: the app's parameters, the protocol version, the resume claim."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update({name: str(value) for name, value in params.items()})
        query["ms_v"] = "2"
        if self._token is not None:
            query.update(ms_id=self.id, ms_token=self._token, ms_offset=self._offset)
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _retries(self, code: int) -> bool:
        """Whether a close with `code` is worth another attempt (refusals: MAX_REFUSALS)."""
        if code in NO_RETRY_CLOSE_CODES:
            return False
        if not 4400 <= code <= 4599 or _retries_with_backoff(code):
            return True
        if code not in (4401, 4403) or not callable(self.params):
            return False
        self._refusals += 1
        return self._refusals <= MAX_REFUSALS

    async def _finish(self, code: int, reason: str) -> None:
        """Closed for good: fail what waits, wake readers, tell on_close once."""
        if self._state == CLOSED:
            return
        self._state = CLOSED
        self.close_code, self.close_reason = code, reason
        self._queue.clear()
        self._pending.fail(connection_closed(code, reason), sent_only=False)
        self._inbox_changed.set()
        self._first_open.set()
        await self._call(self.on_close, code, reason)

    def _opened(self, payload: JSON) -> None:
        """The server said who we are: the session opened or resumed."""
        body = payload if isinstance(payload, dict) else {}
        self.recovered = body.get("recovered") is True
        if not self.recovered:
            self._offset = ""
        session_id, token = body.get("id"), body.get("token")
        self.id = session_id if isinstance(session_id, str) else ""
        self._token = token if isinstance(token, str) else None
        self._state, self._attempts, self._refusals = OPEN, 0, 0
        self._spawn(self._open_then_flush())

    async def _open_then_flush(self) -> None:
        # on_open first, so what it sends (joining rooms again) goes before the buffer.
        await self._call(self.on_open)
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
            self._offset = frame.offset
        if frame.event == PONG:
            return
        if frame.event == SESSION:
            self._opened(frame.payload)
        elif frame.event in (ACK, ERROR) and frame.id is not None:
            self._pending.answer(frame.event, frame.id, frame.payload)
        elif frame.event in self._handlers:
            for handler, validate in list(self._handlers[frame.event]):
                self._spawn(self._handle(frame.event, handler, validate, frame.payload))
        else:
            if len(self._inbox) >= self._inbox_size:
                dropped, _ = self._inbox.popleft()
                log.warning("receive buffer full: dropped the oldest %r frame", dropped)
            self._inbox.append((frame.event, frame.payload))
            self._inbox_changed.set()

    async def _handle(
        self,
        event: str,
        handler: Callable[..., Any],
        validate: Callable[[JSON], Any] | None,
        payload: JSON,
    ) -> None:
        try:
            await self._call(handler, payload if validate is None else validate(payload))
        except ProtocolError as exc:
            log.warning("%r payload did not validate: %s", event, exc.message)

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
            self._handlers.setdefault(event, []).append((func, _payload_validator(func)))
            return func

        return register if handler is None else register(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Remove one handler of `event`, or all of them when `handler` is omitted."""
        kept = [entry for entry in self._handlers.get(event, []) if handler not in (None, entry[0])]
        if kept:
            self._handlers[event] = kept
        else:
            self._handlers.pop(event, None)

    async def receive(self, timeout: float | None = None) -> tuple[str, JSON]:
        """The next (event, payload) without a handler; TimeoutError after `timeout`,
        ConnectionClosed once the socket closed for good and nothing is left."""
        while not self._inbox:
            if self._state == CLOSED:
                raise connection_closed(self.close_code or 1000, self.close_reason)
            self._inbox_changed.clear()
            await asyncio.wait_for(self._inbox_changed.wait(), timeout)
        return self._inbox.popleft()

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

    async def _call(self, callback: Callable[..., Any] | None, *args: Any) -> None:
        """Run a user callback, sync or async; its exception is logged, not raised."""
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("error in %s", getattr(callback, "__name__", repr(callback)))


def _payload_validator(func: Callable[..., Any]) -> Callable[[JSON], Any] | None:
    """The validator of a handler's first parameter's annotation, None when untyped."""
    try:
        first = next(iter(inspect.signature(func).parameters.values()), None)
        hints = typing.get_type_hints(func, include_extras=True)
    except (TypeError, ValueError, NameError):
        return None
    annotation = (
        hints.get(first.name, inspect.Parameter.empty) if first else inspect.Parameter.empty
    )
    if is_any(annotation):
        return None
    return validator(annotation, f"handler {getattr(func, '__qualname__', func)!r}")


def connect(url: str, **options: Any) -> Socket:
    """A Socket to `url`; `async with connect(url) as sock:` connects and closes it.

    The options are Socket's, with the JS client's names in Python spelling.
    """
    return Socket(url, **options)
