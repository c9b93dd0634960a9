"""The Python client alone: a fake transport plays the server and fake time drives the
back-off and the heartbeat (tests/client_fakes.py), in the style of the JS unit tests."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, TypedDict

import pytest

from microsockets.client import (
    DEFAULT_RECONNECT_DELAYS,
    BufferFull,
    ConnectionClosed,
    Disconnected,
    ErrorReply,
    Socket,
)
from microsockets.client.backoff import reconnect_delay
from microsockets.client.codec import decode, encode
from microsockets.exceptions import InvalidPayload, ProtocolError

from .client_fakes import FakeServer, FakeTime, settle

VECTORS = json.loads((Path(__file__).parent / "wire_vectors.json").read_text("utf-8"))


def frame_of(vector: dict[str, Any]) -> str:
    if "frame" in vector:
        return str(vector["frame"])
    return "".join(text * times for text, times in vector["parts"])


def make(server: FakeServer, time: FakeTime, **options: Any) -> Socket:
    options.setdefault("random", lambda: 0.0)  # no jitter: the delays are the schedule's
    return Socket("ws://test/", opener=server.opener, sleep=time.sleep, **options)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


# The codec against the shared wire vectors.


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_codec_encodes_the_message_vectors_exactly(vector):
    assert encode(vector["event"], vector["payload"], vector["id"]) == vector["frame"]


@pytest.mark.parametrize(
    "vector", VECTORS["messages"] + VECTORS["decode_only"], ids=lambda v: v["name"]
)
def test_codec_decodes_the_message_and_decode_only_vectors(vector):
    frame = decode(frame_of(vector))
    assert (frame.event, frame.payload, frame.id) == (
        vector["event"],
        vector["payload"],
        vector["id"],
    )


@pytest.mark.parametrize("vector", VECTORS["replies"], ids=lambda v: v["name"])
def test_codec_decodes_the_server_replies(vector):
    frame = decode(frame_of(vector))
    if vector["kind"] == "error":
        assert frame.event == "ms:error"
        assert frame.payload == {"code": vector["code"], "message": vector["message"]}
    else:
        assert (frame.event, frame.payload) == (f"ms:{vector['kind']}", vector["payload"])
    assert frame.id == vector["id"]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_codec_refuses_the_invalid_vectors_with_their_code(vector):
    with pytest.raises(ProtocolError) as caught:
        decode(frame_of(vector))
    assert caught.value.code == vector["code"]


def test_codec_reads_the_offset_of_logged_frames():
    frame = decode('{"event":"said","payload":"hi","o":"17-0"}')
    assert (frame.event, frame.payload, frame.offset) == ("said", "hi", "17-0")
    assert decode('{"event":"said","payload":{"o":1}}').offset is None


# Back-off.


def test_the_delays_are_the_js_clients_in_seconds_and_jitter_shortens_them():
    assert DEFAULT_RECONNECT_DELAYS == (0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0)
    assert reconnect_delay(1, DEFAULT_RECONNECT_DELAYS, 0.5, lambda: 0.0) == 0.01
    assert reconnect_delay(99, DEFAULT_RECONNECT_DELAYS, 0.5, lambda: 0.0) == 5.0
    assert reconnect_delay(10, DEFAULT_RECONNECT_DELAYS, 0.5, lambda: 0.999) == pytest.approx(
        2.5025
    )


async def test_follows_the_back_off_schedule_calls_the_callbacks_and_resets_after_success(
    server, time
):
    opened: list[str] = []
    closed: list[int] = []
    sock = make(
        server, time, on_open=lambda: opened.append("open"), on_close=lambda c, r: closed.append(c)
    )
    async with sock:
        server.down = True
        server.last.drop(1006)
        await time.advance(0.01 + 0.05 + 0.1)  # three failed attempts
        assert len(server.attempts) == 4
        server.down = False
        await time.advance(0.15)
        assert sock.connected
        assert len(server.attempts) == 5
        server.last.drop(1012)
        await time.advance(0.01)  # the schedule starts over
        assert sock.connected
    assert [d for d in time.slept if d <= 5][:5] == [0.01, 0.05, 0.1, 0.15, 0.01]
    assert opened == ["open"] * 3
    assert closed == [1006, 1006, 1006, 1006, 1012, 1000]


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 1013, 4000, 4429, 4503])
async def test_retries_after_close_code(server, time, code):
    async with make(server, time) as sock:
        server.last.drop(code)
        await time.advance(0.01)
        assert sock.connected
        assert len(server.transports) == 2


@pytest.mark.parametrize("code", [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4404, 4409])
async def test_stops_for_good_after_close_code(server, time, code):
    closed: list[int] = []
    async with make(server, time, on_close=lambda c, r: closed.append(c)) as sock:
        server.last.drop(code, "bye")
        await time.advance(10)
        assert not sock.connected
        assert sock.close_code == code
        with pytest.raises(ConnectionClosed):
            await sock.send("x")
        with pytest.raises(ConnectionClosed):
            await sock.receive()
    assert len(server.attempts) == 1
    assert closed == [code]


async def test_reconnect_false_stops_after_the_first_close(server, time):
    async with make(server, time, reconnect=False) as sock:
        server.last.drop(1006)
        await settle()
        assert sock.close_code == 1006
    assert len(server.attempts) == 1


async def test_a_handshake_that_hangs_is_given_up_after_connect_timeout(time):
    server = FakeServer()
    calls = 0

    async def opener(url: str, subprotocols: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            await time.sleep(3600)  # never answers
        return await server.opener(url, subprotocols)

    sock = Socket("ws://test/", opener=opener, sleep=time.sleep, connect_timeout=0.001)
    entered = _start(sock.__aenter__())
    while calls < 2:
        await asyncio.sleep(0.01)  # real time: the connect timeout is asyncio's
        await time.advance(0.01)
    await entered
    assert sock.connected
    await sock.close()


async def test_close_while_waiting_to_reconnect_closes_at_once(server, time):
    closed: list[int] = []
    async with make(server, time, on_close=lambda c, r: closed.append(c)) as sock:
        server.down = True
        server.last.drop(1006)
        await settle()
        await sock.close(4321, "done")
        assert sock.close_code == 4321
    assert closed == [1006, 4321]


async def test_close_refuses_codes_a_websocket_refuses(server, time):
    async with make(server, time) as sock:
        with pytest.raises(ValueError, match="3000-4999"):
            await sock.close(1006)


async def test_a_refusal_without_a_params_function_fails_the_connect(server, time):
    server.refuse = [4401]
    with pytest.raises(ConnectionClosed) as caught:
        async with make(server, time):
            pass
    assert caught.value.code == 4401
    assert len(server.attempts) == 1


# The send buffer.


async def test_frames_sent_while_reconnecting_go_after_what_on_open_sends(server, time):
    sock = make(server, time)

    async def rejoin() -> None:
        await sock.send("join", "lobby")

    sock.on_open = rejoin
    async with sock:
        server.down = True
        server.last.drop(1006)
        await settle()
        await sock.send("say", "one")
        await sock.send("say", "two")
        assert sock.buffered == 2
        server.down = False
        await time.advance(0.05)
        assert server.last.frames == [
            {"event": "join", "payload": "lobby"},
            {"event": "say", "payload": "one"},
            {"event": "say", "payload": "two"},
        ]
        assert sock.buffered == 0


async def test_a_full_buffer_refuses_the_new_frame_and_keeps_the_old_ones(server, time):
    async with make(server, time, send_buffer_size=2) as sock:
        server.down = True
        server.last.drop(1006)
        await settle()
        await sock.send("a")
        await sock.send("b")
        with pytest.raises(BufferFull) as caught:
            await sock.send("c")
        assert caught.value.code == "buffer_full"
        assert sock.buffered == 2
        with pytest.raises(BufferFull):
            await sock.request("d")


async def test_close_drops_the_buffer_and_fails_pending_requests(server, time):
    async with make(server, time) as sock:
        server.down = True
        server.last.drop(1006)
        await settle()
        await sock.send("a")
        waiting = _start(sock.request("b"))
        await settle()
        await sock.close()
        assert sock.buffered == 0
        with pytest.raises(ConnectionClosed):
            await waiting


# Requests.


def _start(coroutine: Any) -> Any:
    return asyncio.ensure_future(coroutine)


async def test_a_request_returns_the_ack_payload_each_with_its_own_id(server, time):
    async with make(server, time) as sock:
        first, second = _start(sock.request("add", [1, 2])), _start(sock.request("add", [3]))
        await settle()
        assert [f.get("id") for f in server.last.frames] == [1, 2]
        server.last.push("ms:ack", 3, id=2)
        server.last.push("ms:ack", 1, id=1)
        assert (await first, await second) == (1, 3)


async def test_an_error_reply_raises_error_reply_with_the_servers_code(server, time):
    async with make(server, time) as sock:
        pending = _start(sock.request("boom"))
        await settle()
        server.last.push("ms:error", {"code": "handler_error", "message": "it broke"}, id=1)
        with pytest.raises(ErrorReply) as caught:
            await pending
        assert (caught.value.code, caught.value.message) == ("handler_error", "it broke")


async def test_a_request_times_out_and_a_late_ack_is_ignored(server, time):
    async with make(server, time) as sock:
        with pytest.raises(TimeoutError, match="request 'slow' got no answer"):
            await sock.request("slow", timeout=0.01)
        server.last.push("ms:ack", "late", id=1)
        server.last.push("after", "")
        assert await sock.receive(timeout=1) == ("after", "")


async def test_a_request_sent_on_a_lost_connection_raises_disconnected_a_queued_one_survives(
    server, time
):
    async with make(server, time) as sock:
        sent = _start(sock.request("a"))
        await settle()
        server.down = True
        server.last.drop(1006)
        await settle()
        queued = _start(sock.request("b"))
        await settle()
        with pytest.raises(Disconnected) as caught:
            await sent
        assert caught.value.code == 1006
        server.down = False
        await time.advance(0.05)
        assert server.last.frames == [{"event": "b", "payload": "", "id": 2}]
        server.last.push("ms:ack", "ok", id=2)
        assert await queued == "ok"


async def test_a_request_that_times_out_in_the_buffer_is_not_sent_later(server, time):
    async with make(server, time) as sock:
        server.down = True
        server.last.drop(1006)
        await settle()
        with pytest.raises(TimeoutError):
            await sock.request("a", timeout=0.01)
        server.down = False
        await time.advance(1)
        assert server.last.sent == []


# Typed use.


class Sum(TypedDict):
    total: int


@dataclasses.dataclass
class User:
    name: str


async def test_typed_requests_and_handlers_validate_what_comes_back(server, time):
    async with make(server, time) as sock:
        users: list[User] = []

        @sock.on("user")
        def got(user: User) -> None:
            users.append(user)

        good = _start(sock.request("add", [1, 2], type=Sum))
        bad = _start(sock.request("add", [1, 2], type=Sum))
        await settle()
        server.last.push("ms:ack", {"total": 3}, id=1)
        server.last.push("ms:ack", {"total": "x"}, id=2)
        server.last.push("user", {"name": "ann"})
        server.last.push("user", {"nom": "bob"})  # logged, not delivered
        assert await good == {"total": 3}
        with pytest.raises(InvalidPayload, match=r"\$\.total"):
            await bad
        await settle()
        assert users == [User("ann")]


# Receiving.


async def test_handlers_sync_and_async_get_payloads_others_go_to_receive(server, time):
    got: list[Any] = []
    async with make(server, time) as sock:

        @sock.on("a")
        async def on_a(payload: Any) -> None:
            got.append(("async", payload))

        sock.on("a", lambda payload: got.append(("sync", payload)))
        server.last.push("a", 1)
        server.last.push("b", 2)
        server.last.push("ms:pong", 1)
        assert await sock.receive(timeout=1) == ("b", 2)
        await settle()
        assert sorted(got) == [("async", 1), ("sync", 1)]
        sock.off("a")
        server.last.push("a", 3)
        assert await sock.receive(timeout=1) == ("a", 3)


async def test_async_for_ends_when_the_socket_closes_for_good(server, time):
    async with make(server, time) as sock:
        server.last.push("n", 1)
        server.last.push("n", 2)
        server.last.drop(1000)
        assert [item async for item in sock] == [("n", 1), ("n", 2)]


async def test_a_frame_that_breaks_the_protocol_is_skipped(server, time, caplog):
    async with make(server, time) as sock:
        server.last._inbox.put_nowait("not json")
        server.last.push("fine")
        assert await sock.receive(timeout=1) == ("fine", "")
    assert "breaks the protocol" in caplog.text


# Heartbeat.


async def test_pings_every_interval_any_frame_keeps_the_connection(server, time):
    async with make(server, time, heartbeat_interval=20, heartbeat_timeout=10) as sock:
        await time.advance(20)
        assert server.last.frames == [{"event": "ms:ping", "payload": 1}]
        await time.advance(9)
        server.last.push("news")
        await time.advance(11)  # ping 2 at 40: the deadline of ping 1 was cancelled
        assert server.last.events == ["ms:ping", "ms:ping"]
        assert sock.connected
        server.last.push("ms:pong", 2)
        await time.advance(20)
        assert len(server.transports) == 1


async def test_a_silent_connection_is_dropped_with_4000_and_reconnected(server, time):
    closed: list[int] = []
    async with make(server, time, on_close=lambda c, r: closed.append(c)) as sock:
        first = server.last
        await time.advance(20 + 10)
        assert first.aborted
        assert closed == [4000]
        await time.advance(0.01)
        assert sock.connected
        assert len(server.transports) == 2


async def test_heartbeat_interval_0_sends_no_pings_and_pings_stop_while_disconnected(server, time):
    async with make(server, time, heartbeat_interval=0):
        await time.advance(100)
        assert server.last.sent == []
    async with make(server, time) as sock:
        server.down = True
        server.last.drop(1006)
        await time.advance(100)
        assert not sock.connected
        assert server.transports[-1].sent == []


# Sessions, params and refusals.


async def test_ms_session_gives_id_and_a_reconnect_claims_the_session_with_the_last_offset(
    server, time
):
    async with make(server, time, params={"room": "r"}) as sock:
        assert (sock.id, sock.recovered) == ("s1", False)
        assert server.last.query == {"room": "r", "ms_v": "2"}
        server.last.push("said", "a", o="5")
        server.last.push("said", "b", o="6")
        server.last.push("direct", "c")  # not logged: keeps the offset
        server.last.drop(1006)
        await time.advance(0.01)
        assert server.last.query == {
            "room": "r",
            "ms_v": "2",
            "ms_id": "s1",
            "ms_token": "t1",
            "ms_offset": "6",
        }
        assert sock.id == "s2"
        assert not sock.recovered


async def test_a_recovered_session_keeps_its_offset_and_a_lost_one_starts_over(time):
    server = FakeServer(auto_session=False)
    sock = make(server, time)
    opened: list[bool] = []
    sock.on_open = lambda: opened.append(sock.recovered)
    entered = _start(sock.__aenter__())
    await settle()
    server.last.session(id="s1", token="t1")
    await entered
    server.last.push("said", "a", o="5")
    server.last.drop(1006)
    await time.advance(0.01)
    server.last.session(id="s1", token="t2", recovered=True)
    await settle()
    server.last.drop(1006)
    await time.advance(0.01)
    assert server.last.query["ms_offset"] == "5"
    assert server.last.query["ms_token"] == "t2"
    server.last.session(id="s9", token=None, recovered=False)
    await settle()
    server.last.drop(1006)
    await time.advance(0.01)
    assert "ms_token" not in server.last.query  # recovery off: no claim
    server.last.session(id="s10", token="t3")
    await settle()
    assert opened == [False, True, False, False]
    await sock.close()


async def test_a_params_function_runs_before_every_attempt(server, time):
    tokens = iter(["a", "b", "c"])

    async def params() -> dict[str, str]:
        return {"token": next(tokens)}

    async with make(server, time, params=params):
        server.last.drop(1006)
        await time.advance(0.01)
    assert [t.query["token"] for t in server.transports] == ["a", "b"]


@pytest.mark.parametrize("code", [4401, 4403])
async def test_a_refusal_with_a_params_function_refetches_at_most_max_refusals_times(
    server, time, code
):
    calls = 0

    def params() -> dict[str, str]:
        nonlocal calls
        calls += 1
        return {"token": str(calls)}

    async with make(server, time, params=params) as sock:
        server.refuse = [code, code]
        server.last.drop(1006)
        await time.advance(1)
        assert sock.connected
        assert calls == 4
        server.refuse = [code] * 10
        server.last.drop(1006)
        await time.advance(10)
        assert sock.close_code == code
    assert calls == 4 + 1 + 3


async def test_a_connection_without_ms_session_is_given_up_after_connect_timeout(time):
    server = FakeServer(auto_session=False)
    closed: list[tuple[int, str]] = []
    sock = make(server, time, connect_timeout=1, on_close=lambda c, r: closed.append((c, r)))
    entered = _start(sock.__aenter__())
    await time.advance(1)
    assert server.transports[0].aborted
    assert closed == [(1006, "connect timeout: no ms:session frame")]
    await time.advance(0.01)
    server.last.session()
    await entered
    assert sock.connected
    await sock.close()


def test_the_client_names_and_one_error_reply_class():
    import microsockets.client as client
    from microsockets import exceptions, testing

    for name in client.__all__:
        assert hasattr(client, name), name
    assert client.ErrorReply is testing.ErrorReply is exceptions.ErrorReply
    assert issubclass(client.Disconnected, client.ConnectionClosed)


def test_a_url_that_is_not_a_websocket_one_is_refused_at_once():
    with pytest.raises(ValueError, match="ws:// or wss://"):
        Socket("http://127.0.0.1:8000/")


async def test_a_params_function_that_raises_counts_as_a_failed_attempt(server, time, caplog):
    calls = 0

    def params() -> dict[str, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("token service down")
        return {"token": "t"}

    entered = _start(make(server, time, params=params).__aenter__())
    await time.advance(0.01)
    sock = await entered
    assert server.last.query["token"] == "t"
    assert "token service down" in caplog.text
    await sock.close()
