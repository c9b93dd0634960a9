"""Bad input and faults, against a real uvicorn on 127.0.0.1: what a client and the server see.

Each test builds its app inline, connects real clients (the `websockets` library, or the raw
client of tests/helpers_ws.py when the client has to misbehave), and asserts outcomes.
Timeouts here are safety nets, never the thing under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

import microsockets

from .conftest import serve
from .helpers_ws import PING, RawClient, frame

WAIT = 10.0  # safety net for any single wait


def make_app(**options: Any) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("echo")
    async def echo(ws):
        return ws.payload

    @app.on("join")
    async def join(ws):
        await ws.join(ws.payload)
        return "joined"

    @app.on("say")
    async def say(ws):
        await ws.broadcast("said", ws.payload, to=["lobby"], skip_self=False)

    @app.on("boom")
    async def boom(ws):
        raise RuntimeError("secret internals")

    return app


async def recv_json(ws: Any) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), WAIT))


async def request(ws: Any, event: str, payload: Any = "", ack_id: int = 1) -> Any:
    """Send a frame asking for an ack; the reply frame (ack or error) with that id."""
    await ws.send(json.dumps({"event": event, "payload": payload, "id": ack_id}))
    for _ in range(1000):
        reply = await recv_json(ws)
        if reply.get("id") == ack_id:
            return reply
    raise AssertionError("no reply")


async def closed_with(ws: Any) -> int:
    """Read until the server closes; the close code it sent."""

    async def drain() -> None:
        for _ in range(100_000):
            await asyncio.wait_for(ws.recv(), WAIT)

    with pytest.raises(websockets.ConnectionClosed) as info:
        await drain()
    assert info.value.rcvd is not None, "the server did not send a close frame"
    return info.value.rcvd.code


def error_code(reply: dict[str, Any]) -> str:
    assert reply["event"] == "ms:error", reply
    code: str = reply["payload"]["code"]
    return code


async def wait_until(predicate: Any, timeout: float = WAIT) -> None:
    """Poll a condition (bounded); the tests then assert it."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)


# Bad frames.


async def test_invalid_utf8_in_a_text_frame_closes_1007():
    async with serve(make_app()) as url, websockets.connect(url) as ws:
        await ws.send(b'{"event":"echo","payload":"\xff\xfe"}', text=True)
        assert await closed_with(ws) == 1007


async def test_frame_over_max_message_size_closes_1009():
    async with serve(make_app(max_message_size=1000)) as url:
        async with websockets.connect(url, compression=None) as ws:
            assert (await request(ws, "echo", "x" * 900))["event"] == "ms:ack"
            await ws.send(json.dumps({"event": "echo", "payload": "x" * 1000}))
            assert await closed_with(ws) == 1009
        async with websockets.connect(url, compression=None) as ws:  # binary: the same
            await ws.send(b"\0" * 1001)
            assert await closed_with(ws) == 1009


async def test_compressed_frame_inflating_past_the_limit_is_refused_like_an_oversized_one():
    bomb = json.dumps({"event": "echo", "payload": "a" * 2_000_000})
    assert len(zlib.compress(bomb.encode())) < 10_000  # small on the wire
    async with serve(make_app()) as url:  # max_message_size 1 MiB, uvicorn ws_max_size 16 MiB
        async with websockets.connect(url, compression="deflate") as ws:
            assert ws.protocol.extensions, "permessage-deflate was not negotiated"
            await ws.send(bomb)
            assert await closed_with(ws) == 1009


async def test_compression_bomb_past_uvicorn_ws_max_size_never_reaches_the_app():
    """With --ws-max-size set to max_message_size, uvicorn refuses it while inflating."""
    seen: list[int] = []
    app = make_app(max_message_size=100_000)

    @app.on("big")
    async def big(ws):
        seen.append(len(ws.payload))

    bomb = json.dumps({"event": "big", "payload": "a" * 5_000_000})
    async with serve(app, ws_max_size=100_000) as url:
        async with websockets.connect(url, compression="deflate") as ws:
            await ws.send(bomb)
            assert await closed_with(ws) == 1009
    assert seen == []


async def test_binary_frame_gets_an_error_reply_and_the_connection_stays_open():
    async with serve(make_app()) as url, websockets.connect(url) as ws:
        await ws.send(b"\x00\x01binary")
        assert error_code(await recv_json(ws)) == "binary_frame"
        assert (await request(ws, "echo", "still here"))["payload"] == "still here"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        pytest.param("[" * 20_000 + "]" * 20_000, "invalid_json", id="nested-20000-deep"),
        pytest.param(
            '{"event":"echo","payload":' * 2_000 + "1" + "}" * 2_000,
            "invalid_json",
            id="nested-objects",
        ),
        pytest.param('{"event":"echo","payload":NaN,"id":3}', "invalid_json", id="NaN"),
        pytest.param('{"event":"echo","payload":-Infinity}', "invalid_json", id="Infinity"),
        pytest.param('{"event":"echo","payload":1e999}', "invalid_json", id="1e999"),
        pytest.param("not json", "invalid_json", id="not-json"),
        pytest.param("[1,2]", "invalid_frame", id="not-an-object"),
        pytest.param('{"event":""}', "invalid_frame", id="empty-event"),
        pytest.param('{"event":"echo","id":true}', "invalid_frame", id="bad-id"),
        pytest.param('{"event":"' + "e" * 10_000 + '"}', "invalid_frame", id="long-event"),
        pytest.param('{"event":"nope"}', "unknown_event", id="unknown-event"),
    ],
)
@pytest.mark.parametrize("codec", ["stdlib", "orjson"])
async def test_bad_json_gets_an_error_reply_and_the_connection_stays_open(text, code, codec):
    app = make_app(
        codec=microsockets.codec.STDLIB if codec == "stdlib" else microsockets.codec.DEFAULT
    )
    async with serve(app) as url, websockets.connect(url, max_size=None) as ws:
        await ws.send(text)
        assert error_code(await recv_json(ws)) == code
        assert (await request(ws, "echo", 42))["payload"] == 42


async def test_a_5000_digit_integer():
    """Python parses it (the stdlib below its 4,300-digit guard refuses it), orjson refuses."""
    app = make_app()
    async with serve(app) as url, websockets.connect(url) as ws:
        await ws.send('{"event":"echo","payload":' + "9" * 5000 + ',"id":1}')
        assert error_code(await recv_json(ws)) == "invalid_json"
        assert (await request(ws, "echo", 7, ack_id=2))["payload"] == 7


async def test_consecutive_bad_frames_close_1008_and_a_good_frame_resets_the_count():
    async with serve(make_app(max_bad_frames=5)) as url:
        async with websockets.connect(url) as ws:
            for _ in range(4):
                await ws.send("junk")
                assert error_code(await recv_json(ws)) == "invalid_json"
            assert (await request(ws, "echo", 1))["event"] == "ms:ack"  # resets the count
            for _ in range(4):
                await ws.send("junk")
                assert error_code(await recv_json(ws)) == "invalid_json"
            await ws.send("junk")
            assert error_code(await recv_json(ws)) == "invalid_json"
            assert await closed_with(ws) == 1008


# Handlers that fail.


async def test_a_handler_that_raises_is_logged_and_others_keep_working(caplog):
    caplog.set_level(logging.ERROR, logger="microsockets")
    async with serve(make_app()) as url:
        async with websockets.connect(url) as ann, websockets.connect(url) as bob:
            reply = await request(ann, "boom", ack_id=9)
            assert reply == {
                "event": "ms:error",
                "payload": {"code": "handler_error", "message": "internal error"},
                "id": 9,
            }
            assert "secret" not in json.dumps(reply)
            await ann.send(json.dumps({"event": "boom"}))  # no id: no reply, still logged
            assert (await request(ann, "echo", "ann ok", ack_id=10))["payload"] == "ann ok"
            assert (await request(bob, "echo", "bob ok"))["payload"] == "bob ok"
    failures = [r for r in caplog.records if "handler of 'boom' raised" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in failures)


async def test_a_handler_that_hangs_gets_handler_timeout_and_the_connection_keeps_working(caplog):
    app = make_app(handler_timeout=0.3)

    @app.on("hang")
    async def hang(ws):
        await asyncio.Event().wait()

    async with serve(app) as url, websockets.connect(url) as ws:
        reply = await request(ws, "hang", ack_id=5)
        assert reply["id"] == 5
        assert error_code(reply) == "handler_timeout"
        assert (await request(ws, "echo", "after", ack_id=6))["payload"] == "after"
    assert any("handler_timeout" in r.getMessage() for r in caplog.records)


async def test_a_client_that_disconnects_during_a_slow_handler_is_cleaned_up_after():
    started, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    gone: list[str] = []
    app = make_app()

    @app.on("slow")
    async def slow(ws):
        await ws.join("slow room")
        started.set()
        await release.wait()
        await ws.emit("done", "late")  # the client has gone: dropped, no error
        await ws.broadcast("done", "late", to=["slow room"])
        finished.set()

    @app.hooks.on_disconnect
    async def disconnected(ws):
        gone.append(ws.id)

    async with serve(app) as url:
        baseline = len(asyncio.all_tasks())
        ws = await websockets.connect(url)
        await ws.send(json.dumps({"event": "slow"}))
        await asyncio.wait_for(started.wait(), WAIT)
        assert await app.room_manager.members("slow room")
        await ws.close()
        release.set()
        await asyncio.wait_for(finished.wait(), WAIT)
        await wait_until(lambda: not app.connections)
        assert app.connections == {}
        assert len(gone) == 1
        assert await app.room_manager.members("slow room") == set()
        assert await app.room_manager.rooms_of(gone[0]) == set()
        await wait_until(lambda: len(asyncio.all_tasks()) <= baseline)
        assert len(asyncio.all_tasks()) <= baseline


# Clients that vanish or stall.


async def test_a_client_that_resets_mid_broadcast_leaves_nothing_behind():
    app = make_app()
    gone: list[str] = []

    @app.hooks.on_disconnect
    async def disconnected(ws):
        gone.append(ws.id)

    async with serve(app) as url:
        baseline = len(asyncio.all_tasks())
        async with websockets.connect(url) as honest:
            assert (await request(honest, "join", "lobby"))["payload"] == "joined"
            vanishing = []
            for _ in range(20):
                raw = await RawClient.connect(url)
                await raw.send_text(json.dumps({"event": "join", "payload": "lobby"}))
                vanishing.append(raw)
            await wait_until(lambda: len(app.connections) == 21)
            await wait_until(lambda: app.room_manager.index.room_size("lobby") == 21)
            assert len(await app.room_manager.members("lobby")) == 21
            for i in range(2000):
                await app.broadcast("said", {"n": i, "pad": "x" * 200}, to="lobby")
                if i % 100 == 50:
                    vanishing.pop().reset()  # TCP RST in the middle of the stream
                    await asyncio.sleep(0)
            for raw in vanishing:
                raw.reset()
            received = [(await recv_json(honest))["payload"]["n"] for _ in range(2000)]
            assert received == list(range(2000))
            await wait_until(lambda: len(app.connections) == 1)
            assert len(app.connections) == 1
            assert len(gone) == 20
            assert await app.room_manager.members("lobby") == {next(iter(app.connections))}
        await wait_until(lambda: not app.connections)
        assert await app.room_manager.members("lobby") == set()
        assert app.room_manager.index.room_count == 0
        assert app.room_manager.index.connection_count == 0
        await wait_until(lambda: len(asyncio.all_tasks()) <= baseline)
        assert len(asyncio.all_tasks()) <= baseline


async def test_a_slow_consumer_is_disconnected_and_delays_nobody(caplog):
    """A client that completes the handshake and never reads, in a busy room.

    The honest readers get every broadcast in order; the stalled one is dropped (1013) once
    its backlog passes send_queue_limit, after leaving its rooms; the process's traced
    memory stays far below what the stalled client would have hoarded.
    """
    limit = 256 * 1024
    app = make_app(send_queue_limit=limit)
    events: list[tuple[int | None, set[str]]] = []

    @app.hooks.on_disconnect
    async def disconnected(ws):
        events.append((ws.close_code, await app.room_manager.rooms_of(ws.id)))

    messages, size = 5000, 1000
    total = messages * (size + 40)
    async with serve(app) as url:
        readers = [
            await websockets.connect(url, max_queue=None, compression=None) for _ in range(3)
        ]
        for ws in readers:
            assert (await request(ws, "join", "lobby"))["payload"] == "joined"
        stalled = await RawClient.connect(url, rcvbuf=4096)
        try:
            await stalled.send_text(json.dumps({"event": "join", "payload": "lobby"}))
            await wait_until(lambda: app.room_manager.index.room_size("lobby") == 4)
            assert len(await app.room_manager.members("lobby")) == 4

            progress = [0] * len(readers)

            async def read_all(index: int, ws: Any) -> list[int]:
                numbers = []
                for _ in range(messages):
                    numbers.append(
                        json.loads(await asyncio.wait_for(ws.recv(), WAIT))["payload"]["n"]
                    )
                    progress[index] = len(numbers)
                return numbers

            readers_done = asyncio.gather(*(read_all(i, ws) for i, ws in enumerate(readers)))
            tracemalloc.start()
            before, _ = tracemalloc.get_traced_memory()
            max_backlog = 0
            for i in range(messages):
                await app.broadcast("said", {"n": i, "pad": "x" * size}, to="lobby")
                max_backlog = max(max_backlog, *(s.buffered_amount for s in app.sockets()))
                if i % 50 == 0:  # the honest readers keep up (bounded wait); the stalled one not
                    await wait_until(lambda i=i: min(progress) >= i - 100)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            got = await asyncio.wait_for(readers_done, 60)
            assert all(seq == list(range(messages)) for seq in got)
            await wait_until(lambda: len(app.connections) == 3)
            assert len(app.connections) == 3
            assert events == [(1013, set())]  # on_disconnect ran after it left its rooms
            assert len(await app.room_manager.members("lobby")) == 3
            assert any(
                r.levelno == logging.WARNING and "with 1013" in r.getMessage()
                for r in caplog.records
            )
            assert max_backlog <= limit + size + 100
            print(
                f"\nslow consumer: {messages} broadcasts of ~{size} B ({total / 1e6:.1f} MB "
                f"per client), send_queue_limit={limit}: largest backlog {max_backlog} B, "
                f"traced memory peak growth {(peak - before) / 1e6:.2f} MB (clients included)"
            )
            assert peak - before < total / 2  # nobody hoarded the stream
            # When the stalled client reads at last, it gets an in-order prefix of the stream
            # and then the 1013 close, or EOF if it waited longer than the close timeout.
            code, texts = await asyncio.wait_for(stalled.read_until_close(), 30)
            numbers = [json.loads(text)["payload"]["n"] for text in texts]
            assert numbers == list(range(len(numbers)))
            assert len(numbers) < messages
            assert code in (1013, None)
            for ws in readers:
                await ws.close()
        finally:
            stalled.reset()


async def test_half_open_connections_are_found_by_transport_pings(caplog):
    """A client that stops answering (as a half-open peer would): uvicorn pings, gives up."""
    app = make_app()
    codes: list[int | None] = []

    @app.hooks.on_disconnect
    async def disconnected(ws):
        codes.append(ws.close_code)

    async with serve(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as url:
        async with websockets.connect(url) as alive:  # answers pings: stays
            mute = [await RawClient.connect(url) for _ in range(5)]
            for raw in mute:
                await raw.send_text(json.dumps({"event": "join", "payload": "lobby"}))
            await wait_until(lambda: len(codes) == 5)
            assert len(codes) == 5
            assert await app.room_manager.members("lobby") == set()
            for raw in mute:
                code, _ = await raw.read_until_close()
                assert code == 1011  # "keepalive ping timeout"
                raw.close()
            await asyncio.sleep(0.5)  # several ping rounds: the honest client stays
            assert (await request(alive, "echo", "alive"))["payload"] == "alive"
            assert len(app.connections) == 1


# Shutdown.


def _popen_uvicorn(
    sock: socket.socket, report: Path, extra: tuple[str, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.helpers_apps:app",
            "--fd",
            str(sock.fileno()),
            "--log-level",
            "warning",
            *extra,
        ],
        pass_fds=[sock.fileno()],
        env={**os.environ, "MS_REPORT": str(report)},
        cwd=Path(__file__).parent.parent,
    )


@contextlib.asynccontextmanager
async def _uvicorn_process(
    report: Path, *extra: str
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn serving tests.helpers_apps:app in a subprocess on a free port, killed if
    still running at the end; yields its ws:// URL and the process, once it listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
    server = _popen_uvicorn(sock, report, extra)
    sock.close()
    try:
        await _serving(url)
        yield url, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def _serving(url: str) -> None:
    """Wait until the server listens (a bare TCP connection, which the app never sees)."""
    for _ in range(400):
        try:
            probe = await RawClient.connect(url, handshake=False)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        probe.close()
        return
    raise AssertionError("the server did not start")


async def _sigterm_with_clients(tmp_path: Path, count: int) -> None:
    report = tmp_path / "report.txt"
    clients: list[Any] = []
    try:
        async with _uvicorn_process(report) as (url, server):
            sem = asyncio.Semaphore(100)

            async def connect() -> Any:
                async with sem:
                    ws = await websockets.connect(url, open_timeout=WAIT)
                    await ws.send(json.dumps({"event": "join", "payload": "lobby", "id": 1}))
                    await asyncio.wait_for(ws.recv(), WAIT)
                    return ws

            clients = await asyncio.gather(*(connect() for _ in range(count)))
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(*(closed_with(ws) for ws in clients))
            all_closed = time.monotonic() - started
            returncode = await asyncio.to_thread(server.wait, 60)
            exited = time.monotonic() - started
    finally:
        for ws in clients:
            await ws.close()
    print(
        f"\nSIGTERM with {count} clients: all closed after {all_closed:.2f}s, "
        f"process exited after {exited:.2f}s"
    )
    assert returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert sorted(set(codes)) == [1001]
    lines = report.read_text().splitlines()
    assert lines.count("startup") == 1
    assert lines.count("disconnect 1001") == count
    assert [line for line in lines if line.startswith("shutdown")] == ["shutdown 0"]
    assert lines[-1] == "shutdown 0"


async def test_a_client_reconnecting_during_shutdown_is_refused(tmp_path):
    async with _uvicorn_process(tmp_path / "report.txt") as (url, server):
        ws = await websockets.connect(url, open_timeout=WAIT)
        server.send_signal(signal.SIGTERM)
        assert await closed_with(ws) == 1001
        with pytest.raises((websockets.InvalidStatus, OSError)) as caught:
            await websockets.connect(url, open_timeout=WAIT)
        if isinstance(caught.value, websockets.InvalidStatus):
            assert caught.value.response.status_code == 503
        assert await asyncio.to_thread(server.wait, 30) in (0, -signal.SIGTERM)


async def test_sigterm_closes_every_client_with_1001(tmp_path):
    await _sigterm_with_clients(tmp_path, 50)


@pytest.mark.slow
async def test_sigterm_with_1000_clients(tmp_path):
    await _sigterm_with_clients(tmp_path, 1000)


async def test_sigterm_with_a_stalled_client_exits_within_timeout_graceful_shutdown(tmp_path):
    """A client that stopped reading keeps its TCP connection open in uvicorn (asyncio
    waits to flush before closing), which holds up uvicorn's graceful shutdown for as long
    as the client stalls. `--timeout-graceful-shutdown` bounds it (docs/security.md)."""
    report = tmp_path / "report.txt"
    stalled = None
    try:
        async with _uvicorn_process(report, "--timeout-graceful-shutdown", "2") as (url, server):
            stalled = await RawClient.connect(url, rcvbuf=4096)
            await stalled.send_text(json.dumps({"event": "join", "payload": "lobby"}))
            async with websockets.connect(url) as honest:
                for _ in range(3000):  # 3 MB to the lobby, where a client reads nothing
                    await honest.send(json.dumps({"event": "say", "payload": "x" * 1000}))
                assert (await request(honest, "stats", ack_id=2))["payload"]["lobby"] in (0, 1)
                started = time.monotonic()
                server.send_signal(signal.SIGTERM)
                assert await closed_with(honest) == 1001
            returncode = await asyncio.to_thread(server.wait, 30)
            exited = time.monotonic() - started
    finally:
        if stalled is not None:
            stalled.reset()
    print(
        f"\nSIGTERM with a stalled client, --timeout-graceful-shutdown 2: exit after {exited:.1f}s"
    )
    assert returncode in (0, -signal.SIGTERM)
    lines = report.read_text().splitlines()
    assert len([line for line in lines if line.startswith("disconnect")]) == 2
    assert lines[-1].startswith("shutdown")


async def test_a_flood_of_transport_pings_from_a_client_that_does_not_read(capsys):
    """uvicorn (websockets-sansio) answers each WebSocket ping with a pong written without
    back-pressure, so a client that sends pings and reads nothing makes the server buffer
    pongs as fast as it sends pings. Outside the app's reach: docs/security.md says what
    to do. What the app guarantees: it is unaffected and other clients are served."""
    app = make_app()
    async with serve(app) as url:
        flooder = await RawClient.connect(url, rcvbuf=4096)
        try:
            before = _rss()
            pings = frame(PING, b"p" * 125) * 1000
            sent = 0
            for _ in range(100):  # 13 MB of pings
                try:
                    await asyncio.wait_for(flooder.send(pings), 5)
                except asyncio.TimeoutError:  # the server stopped reading: back-pressure works
                    break
                sent += 1000
            await asyncio.sleep(0.2)
            growth = _rss() - before
            async with websockets.connect(url) as ws:
                assert (await request(ws, "echo", "served"))["payload"] == "served"
        finally:
            flooder.reset()
    with capsys.disabled():
        print(
            f"\nping flood: {sent} pings of 125 B from a client that reads nothing; "
            f"server process RSS grew {growth / 1e6:.1f} MB"
        )


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_a_handler_that_floods_its_own_stalled_client_waits_then_times_out(caplog):
    """A handler's own emits wait for its client (back-pressure, as websockets' send does):
    nothing piles up in memory, handler_timeout ends the wait, and the connection is cleaned
    up once the client goes. Other clients are not delayed meanwhile."""
    app = make_app(send_queue_limit=64 * 1024, handler_timeout=0.5)
    reached: list[int] = []
    gone: list[int | None] = []

    @app.on("flood me")
    async def flood(ws):
        for n in range(20_000):  # 20 MB: more than the kernel's socket buffers absorb
            await ws.emit("chunk", "x" * 1000)
            reached.append(n)

    @app.hooks.on_disconnect
    async def disconnected(ws):
        gone.append(ws.close_code)

    async with serve(app) as url:
        baseline = len(asyncio.all_tasks())
        stalled = await RawClient.connect(url, rcvbuf=4096)
        try:
            with caplog.at_level(logging.ERROR, "microsockets"):
                await stalled.send_text(json.dumps({"event": "flood me", "id": 1}))
                await wait_until(lambda: "handler_timeout" in caplog.text)
            assert 0 < len(reached) < 20_000
            assert max(s.buffered_amount for s in app.sockets()) <= 64 * 1024
            async with websockets.connect(url) as ws:
                assert (await request(ws, "echo", "fine"))["payload"] == "fine"
        finally:
            stalled.reset()
        await wait_until(lambda: gone)
        await wait_until(lambda: not app.connections)
        assert app.room_manager.index.connection_count == 0
        await wait_until(lambda: len(asyncio.all_tasks()) <= baseline)
        assert len(asyncio.all_tasks()) <= baseline
