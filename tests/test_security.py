"""Issue 12, an adversarial probe of a served app: one test per finding, each as a client
would mount it against a real uvicorn, asserting the documented answer and how many log
lines it caused (docs/security.md, "What is logged")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

import example
import microsockets
from microsockets.codec import DEFAULT, STDLIB, Codec
from microsockets.protocol import MAX_DEPTH
from microsockets.session import BAD_FRAMES_PER_WINDOW, YIELD_EVERY

from .conftest import serve
from .helpers_ws import CLOSE, RawClient, text_frame

WAIT = 10
CODECS = pytest.mark.parametrize("codec", [STDLIB, DEFAULT], ids=lambda c: c.name)


@contextlib.contextmanager
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """Every record of microsockets and of uvicorn (whose loggers do not propagate)."""
    caplog.set_level(logging.INFO, logger="microsockets")
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.addHandler(caplog.handler)
    try:
        yield caplog.records
    finally:
        uvicorn_logger.removeHandler(caplog.handler)


def ours(records: list[logging.LogRecord]) -> list[str]:
    """The library's lines, less the "connection ID from HOST:PORT: " each one starts with."""
    lines = [r.getMessage() for r in records if r.name == "microsockets"]
    assert all(CONNECTION.match(line) for line in lines), lines
    return [CONNECTION.sub("", line, count=1) for line in lines]


CONNECTION = re.compile(r"connection [0-9a-f]{32} from \S+: ")


def tracebacks(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.exc_info or "Exception in ASGI" in r.getMessage()]


def echo_app(**options: Any) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("echo")
    async def echo(ws: microsockets.Socket) -> Any:
        return ws.payload

    @app.on("rebroadcast")
    async def rebroadcast(ws: microsockets.Socket) -> None:
        await ws.broadcast("echo", ws.payload, to=ws.id, skip_self=False)

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(ws.payload)
        return "joined"

    @app.on("tell")
    async def tell(ws: microsockets.Socket) -> str:
        await ws.broadcast("told", "hi", to=ws.payload)
        return "told"

    return app


async def replies(raw: RawClient, count: int) -> list[dict[str, Any]]:
    """The next `count` text frames from the server, decoded."""
    frames = []
    while len(frames) < count:
        opcode, data = await asyncio.wait_for(raw.read_frame(), WAIT)
        assert opcode != CLOSE, f"closed with {data!r} after {len(frames)} frames"
        frames.append(json.loads(data))
    return frames


def code_of(reply: dict[str, Any]) -> str:
    assert reply["event"] == "ms:error", reply
    code: str = reply["payload"]["code"]
    return code


def request(event: str, payload: Any, ack_id: int) -> bytes:
    return text_frame(json.dumps({"event": event, "payload": payload, "id": ack_id}))


# 1. A malformed Origin: HTTP 403 and one short WARNING, not a 500 and a traceback.


@pytest.mark.parametrize("which", ["library", "example"])
async def test_1_a_malformed_origin_gets_403_and_one_log_line(caplog, which):
    app = echo_app() if which == "library" else example.app
    async with serve(app) as url:
        with all_logs(caplog) as records:
            for origin in ("http://[", "http://host:99999", "http://[::1"):
                raw = await RawClient.connect(url, headers={"Origin": origin})
                raw.close()
                assert raw.status == 403, origin
            await asyncio.sleep(0.1)  # uvicorn logs after the response
    assert [m.startswith("refused Origin 'http://") for m in ours(records)] == [True] * 3
    assert tracebacks(records) == []
    # uvicorn's own "ASGI callable returned without completing handshake." is dropped for the
    # handshakes the library refused on purpose (servers.QuietServerLog, docs/security.md).
    assert [r.getMessage() for r in records if r.name.startswith("uvicorn")] == []


# 2. Once a session has decided to close, it reads no more frames, and logs once.


async def test_2_a_burst_of_bad_frames_is_answered_closed_and_logged_once(caplog):
    async with serve(echo_app()) as url:
        raw = await RawClient.connect(url)
        with all_logs(caplog) as records:
            await raw.send(text_frame("") * 10_000)  # 60 KB in one write
            code, texts = await asyncio.wait_for(raw.read_until_close(), WAIT)
            raw.close()
            await asyncio.sleep(0.1)
    assert (code, len(texts)) == (1008, 10)
    assert {code_of(json.loads(t)) for t in texts} == {"invalid_json"}
    assert [m.split(": ", 1)[1] for m in ours(records)] == ["10 bad frames in a row"]
    assert tracebacks(records) == []


# 3. The decoder refuses any nesting the encoder cannot write, with one limit for both codecs.


def nested(depth: int) -> Any:
    """A payload `depth` levels deep (a frame holding it is one level deeper)."""
    return json.loads("[" * depth + "]" * depth)


@CODECS
async def test_3_deep_frames_are_refused_at_decode_with_the_same_limit(caplog, codec):
    app = echo_app(codec=codec)
    deepest, too_deep = nested(MAX_DEPTH - 1), nested(MAX_DEPTH)
    async with serve(app) as url:
        raw = await RawClient.connect(url)
        with all_logs(caplog) as records:
            too_deep_ping = '{"event":"ms:ping","payload":' + "[" * 300 + "]" * 300 + "}"
            await raw.send(text_frame(too_deep_ping))  # orjson used to crash on the pong
            await raw.send(request("echo", deepest, 1) + request("rebroadcast", deepest, 2))
            await raw.send(request("echo", too_deep, 3) + request("rebroadcast", too_deep, 4))
            deep = '{"event":"rebroadcast","payload":' + "[" * 970 + "]" * 970 + ',"id":5}'
            for _ in range(5):  # the stdlib codec used to log a traceback for each of these
                await raw.send(text_frame(deep))
            got = await replies(raw, 11)
            raw.close()
            await asyncio.sleep(0.1)
    assert code_of(got[0]) == "invalid_json"
    assert got[0]["payload"]["message"] == f"frame nested deeper than {MAX_DEPTH} levels"
    assert (got[1]["event"], got[1]["id"]) == ("ms:ack", 1)
    assert got[2] == {"event": "echo", "payload": deepest}  # rebroadcast, 127 levels deep
    assert (got[3]["event"], got[3]["id"]) == ("ms:ack", 2)
    assert [code_of(r) for r in got[4:]] == ["invalid_json"] * 7
    assert ours(records) == []
    assert tracebacks(records) == []


async def test_3_every_encode_failure_becomes_an_error_reply(caplog):
    """A codec that reads what it cannot write: the pong is an error reply, not a crash."""

    def dumps(value: Any) -> str:
        if isinstance(value, dict) and value.get("event") == "ms:pong":
            raise TypeError("cannot write this")
        return STDLIB.dumps(value)

    app = echo_app(codec=Codec("picky", STDLIB.loads, dumps))
    async with serve(app) as url:
        raw = await RawClient.connect(url)
        with all_logs(caplog) as records:
            await raw.send(request("ms:ping", 1, 1) + request("echo", 2, 2))
            got = await replies(raw, 2)
            raw.close()
            await asyncio.sleep(0.1)
    assert (code_of(got[0]), got[0]["id"]) == ("invalid_frame", 1)
    assert got[1]["payload"] == 2
    assert tracebacks(records) == []


# 4. Everything a client controls is logged escaped: no forged log lines.


async def test_4_client_controlled_text_is_logged_escaped(caplog):
    app = echo_app()

    @app.hooks.on_connect
    async def authenticate(ws: microsockets.Socket) -> None:
        raise microsockets.Reject("bad token")

    async with serve(app) as url:
        with all_logs(caplog) as records:
            raw = await RawClient.connect(url, "/x%0aINFO:%20fake%20line?token=bad")
            raw.close()
            raw = await RawClient.connect(url, headers={"Origin": "http://a\tINFO: fake"})
            raw.close()
            await asyncio.sleep(0.1)
    lines = ours(records)
    assert len(lines) == 2
    assert lines[0].startswith("refused '/x\\nINFO: fake line': ")
    assert lines[1].startswith("refused Origin 'http://a\\tINFO: fake'")
    assert not any("\n" in r.getMessage() or "\t" in r.getMessage() for r in records)


# 5. A broadcast names at most max_broadcast_rooms rooms.


async def test_5_a_broadcast_to_too_many_rooms_is_refused(caplog):
    async with serve(echo_app()) as url, websockets.connect(url) as ws:
        with all_logs(caplog) as records:
            limit = microsockets.Application().max_broadcast_rooms
            names = [f"room-{n}" for n in range(limit + 1)]
            await ws.send(json.dumps({"event": "tell", "payload": names[:limit], "id": 1}))
            await ws.send(json.dumps({"event": "tell", "payload": names, "id": 2}))
            first, second = [json.loads(await ws.recv()) for _ in range(2)]
    assert first == {"event": "ms:ack", "payload": "told", "id": 1}
    assert (code_of(second), second["id"]) == ("too_many_targets", 2)
    assert ours(records) == []


# 6. Room names are at most max_room_length characters.


async def test_6_a_long_room_name_is_refused(caplog):
    app = echo_app()
    async with serve(app) as url, websockets.connect(url) as ws:
        with all_logs(caplog) as records:
            longest = "r" * app.limits.max_room_length
            await ws.send(json.dumps({"event": "join", "payload": longest, "id": 1}))
            await ws.send(json.dumps({"event": "join", "payload": longest + "r", "id": 2}))
            await ws.send(json.dumps({"event": "join", "payload": "x" * 10_000, "id": 3}))
            got = [json.loads(await ws.recv()) for _ in range(3)]
    assert got[0] == {"event": "ms:ack", "payload": "joined", "id": 1}
    assert [(code_of(r), r["id"]) for r in got[1:]] == [
        ("room_name_too_long", 2),
        ("room_name_too_long", 3),
    ]
    assert ours(records) == []


# 7. Fairness: a backlog does not hold the loop, the rate is checked before decoding, and a
# connection that has gone is not served.


async def test_7_a_backlog_of_frames_lets_other_tasks_run(caplog):
    app = echo_app()
    ticks = 0
    seen: list[int] = []

    @app.on("work")
    async def work(ws: microsockets.Socket) -> None:
        seen.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    async with serve(app) as url:
        raw = await RawClient.connect(url)
        task = asyncio.create_task(ticker())
        with all_logs(caplog) as records:
            await raw.send(text_frame('{"event":"work"}') * 2000 + request("echo", 1, 1))
            await replies(raw, 1)
        task.cancel()
        raw.close()
    assert len(seen) == 2000
    # Each chunk that uvicorn reads used to be handled in one go, the ticker never running.
    assert len(set(seen)) >= 2000 // YIELD_EVERY - 10
    assert ours(records) == []


async def test_7_the_rate_is_checked_before_decoding():
    app = echo_app(rate_limit=5, rate_burst=5, max_bad_frames=100)
    async with serve(app) as url:
        raw = await RawClient.connect(url)
        deep = '{"event":"echo","payload":' + "[" * 300 + "]" * 300 + "}"
        await raw.send(b"".join(request("echo", n, n) for n in range(1, 6)))
        await raw.send(text_frame(deep) + text_frame("not json"))
        got = await replies(raw, 7)
        raw.close()
    assert [r["id"] for r in got[:5]] == [1, 2, 3, 4, 5]
    assert [code_of(r) for r in got[5:]] == ["rate_limited"] * 2  # not invalid_json: unread


async def test_7_frames_of_a_client_that_has_gone_are_not_handled():
    app = echo_app()
    release = asyncio.Event()
    handled: list[int] = []

    @app.on("hold")
    async def hold(ws: microsockets.Socket) -> None:
        await release.wait()

    @app.on("work")
    async def work(ws: microsockets.Socket) -> None:
        handled.append(1)
        await ws.emit("done")

    async with serve(app) as url:
        raw = await RawClient.connect(url)
        await raw.send(text_frame('{"event":"hold"}') + text_frame('{"event":"work"}') * 500)
        await asyncio.sleep(0.2)  # uvicorn reads the backlog into its queue
        raw.reset()
        await asyncio.sleep(0.2)  # and sees the reset
        release.set()
        for _ in range(100):
            if not app.sockets():
                break
            await asyncio.sleep(0.02)
    assert app.sockets() == []
    # The reset shows when the loop next runs (the first failed write schedules it): at the
    # session's next yield at the latest. The send after that fails, and nothing more is handled.
    assert len(handled) <= YIELD_EVERY + 1


# 8. Bad frames are counted over a time window too, and error replies are short.


async def test_8_bad_frames_between_good_ones_still_close(caplog):
    app = echo_app()
    async with serve(app) as url:
        raw = await RawClient.connect(url)
        with all_logs(caplog) as records:
            cycle = text_frame("") * 9 + text_frame('{"event":"ms:ping"}')
            await raw.send(cycle * 20)
            code, texts = await asyncio.wait_for(raw.read_until_close(), WAIT)
            raw.close()
            await asyncio.sleep(0.1)
    errors = [json.loads(t) for t in texts if b"ms:error" in t]
    window = app.limits.max_bad_frames * BAD_FRAMES_PER_WINDOW
    assert (code, len(errors)) == (1008, window)
    assert max(len(t) for t in texts if b"ms:error" in t) <= 90
    assert [m.split(": ", 1)[1] for m in ours(records)] == [f"{window} bad frames in 10 s"]


# 9. The Origin check compares schemes; an explicit list stops DNS rebinding.


async def test_9_an_origin_with_another_scheme_is_refused(caplog):
    async with serve(echo_app()) as url:
        with all_logs(caplog) as records:
            statuses = {}
            for scheme in ("http", "https", "ftp"):
                origin = f"{scheme}://127.0.0.1"  # the Host header of helpers_ws
                raw = await RawClient.connect(url, headers={"Origin": origin})
                raw.close()
                statuses[scheme] = raw.status
            await asyncio.sleep(0.1)
    assert statuses == {"http": 101, "https": 403, "ftp": 403}
    assert len(ours(records)) == 2


async def test_9_dns_rebinding_passes_the_host_check_but_not_an_origin_list():
    """After DNS rebinding, the page of evil.example talks to us under its own name: Host
    and Origin agree. Only a list of our own origins (or of our Host names) refuses it."""
    rebound = {"Origin": "http://127.0.0.1"}  # Host is 127.0.0.1: imagine evil.example there
    statuses = []
    for allowed in (None, ["https://chat.example"]):
        async with serve(echo_app(allowed_origins=allowed)) as url:
            raw = await RawClient.connect(url, headers=rebound)
            raw.close()
            statuses.append(raw.status)
    assert statuses == [101, 403]  # docs/security.md, "DNS rebinding"


# 10-12. example.py: deltas to the room, ws_max_size, Allow on 405.


async def test_10_example_sends_the_member_list_to_the_joiner_only():
    """The joiner gets the list; the others get presence diffs, not the list again."""

    async def next_event(ws: Any, event: str) -> Any:
        while True:
            frame = json.loads(await ws.recv())
            if frame["event"] == event:
                return frame["payload"]

    async with serve(example.app) as url, websockets.connect(url) as ann:
        await ann.send(json.dumps({"event": "join", "payload": {"room": "r", "user": "ann"}}))
        assert (await next_event(ann, "joined"))["members"] == ["ann"]
        async with websockets.connect(url) as bob:
            join = {"event": "join", "payload": {"room": "r", "user": "bob"}, "id": 1}
            await bob.send(json.dumps(join))
            assert (await next_event(bob, "joined"))["members"] == ["ann", "bob"]
            while True:
                diff = await next_event(ann, "ms:presence")
                if {"user": "bob"} in diff["joins"].values():
                    break
            bob_id = next(i for i, meta in diff["joins"].items() if meta == {"user": "bob"})
        diff = await next_event(ann, "ms:presence")
        assert diff == {"room": "r", "joins": {}, "leaves": {bob_id: {"user": "bob"}}}


def test_11_example_runs_uvicorn_with_ws_max_size_from_max_message_size(monkeypatch, capsys):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(example.uvicorn, "run", lambda app, **options: seen.update(options))
    example.main()
    assert seen["ws_max_size"] == example.app.protocol.max_message_size == 64 * 1024


async def test_11_a_compressed_bomb_stops_at_max_message_size():
    app = echo_app()
    size = app.protocol.max_message_size
    async with serve(app, ws_max_size=size) as url:
        async with websockets.connect(url, compression="deflate", max_size=None) as ws:
            await ws.send(json.dumps({"event": "echo", "payload": "x" * size}))
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_12_a_405_names_the_allowed_methods():
    async with serve(example.app) as url:
        reader, writer = await asyncio.open_connection(*url[5:].split(":"))
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        head = (await asyncio.wait_for(reader.read(4096), WAIT)).split(b"\r\n\r\n")[0]
        writer.close()
    assert head.startswith(b"HTTP/1.1 405")
    assert b"\r\nallow: GET, HEAD\r\n" in head
