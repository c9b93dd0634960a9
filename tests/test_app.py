"""The Application through the in-process TestClient: what a handler's author sees."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

import microsockets
from microsockets.testing import ErrorReply, HandshakeRejected, TestClient


def chat_app(**options) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("join")
    async def join(ws):
        await ws.join(ws.payload["room"])
        return sorted(ws.rooms - {ws.id})

    @app.on("leave")
    async def leave(ws):
        await ws.leave(ws.payload["room"])

    @app.on("say")
    async def say(ws):
        await ws.broadcast("said", ws.payload["text"], to=ws.payload.get("to"))

    @app.on("shout")
    async def shout(ws):
        await ws.broadcast("said", ws.payload, skip_self=False)

    @app.on("whoami")
    async def whoami(ws):
        return ws.id

    return app


async def test_acks_carry_the_handler_return_value():
    app = chat_app()

    @app.on("add")
    async def add(ws):
        return sum(ws.payload)

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("add", [1, 2, 3]) == 6
        assert await ws.request("join", {"room": "r"}) == ["r"]
        assert await ws.request("leave", {"room": "r"}) is None


async def test_frames_without_id_get_no_reply():
    app = chat_app()
    async with TestClient(app) as client, client.connect() as ws:
        await ws.send("join", {"room": "r"})
        assert await ws.request("whoami") == next(iter(s.id for s in app.sockets()))
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.05)


async def test_string_payloads_are_never_decoded_twice():
    app = microsockets.Application()

    @app.on("echo")
    async def echo(ws):
        return ws.payload

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("echo", '{"a": 1}') == '{"a": 1}'
        await ws.send_text('{"event": "echo", "id": 9}')
        assert await ws.receive_frame() == ("ms:ack", "", 9)


async def test_broadcast_reaches_rooms_once_each_and_skips_self():
    async with TestClient(chat_app()) as client:
        async with client.connect() as a, client.connect() as b, client.connect() as c:
            await a.request("join", {"room": "x"})
            await b.request("join", {"room": "x"})
            await b.request("join", {"room": "y"})
            await c.request("join", {"room": "y"})
            await a.request("say", {"text": "hi", "to": ["x", "y"]})
            assert await b.receive() == ("said", "hi")
            assert await c.receive() == ("said", "hi")
            for ws in (a, b, c):
                with pytest.raises(TimeoutError):
                    await ws.receive(timeout=0.05)


async def test_broadcast_to_none_reaches_everyone_and_skip_self_false_includes_sender():
    async with TestClient(chat_app()) as client:
        async with client.connect() as a, client.connect() as b:
            await a.send("shout", "all")
            assert await a.receive() == ("said", "all")
            assert await b.receive() == ("said", "all")
            await a.send("say", {"text": "others"})
            assert await b.receive() == ("said", "others")


async def test_to_a_connection_id_reaches_that_client_only():
    async with TestClient(chat_app()) as client:
        async with client.connect() as a, client.connect() as b, client.connect() as c:
            b_id = await b.request("whoami")
            await a.send("say", {"text": "psst", "to": [b_id]})
            assert await b.receive() == ("said", "psst")
            with pytest.raises(TimeoutError):
                await c.receive(timeout=0.05)
            await a.send("say", {"text": "one room as a string", "to": b_id})
            assert await b.receive() == ("said", "one room as a string")


async def test_app_emit_and_broadcast_work_outside_handlers():
    app = chat_app()
    async with TestClient(app) as client, client.connect() as a, client.connect() as b:
        await a.request("join", {"room": "news"})
        await app.broadcast("headline", {"n": 1}, to=["news"])
        assert await a.receive() == ("headline", {"n": 1})
        await app.emit("direct", "hello", to=(await b.request("whoami")))
        assert await b.receive() == ("direct", "hello")
        await app.broadcast("all", skip=await a.request("whoami"))
        assert await b.receive() == ("all", "")


async def test_reserved_event_names_cannot_be_registered_or_sent():
    app = microsockets.Application()
    with pytest.raises(ValueError, match="reserved"):
        app.on("ms:ack")
    with pytest.raises(ValueError, match="reserved"):
        await app.broadcast("ms:error", "spoof")


async def test_application_ping_gets_pong_with_same_payload():
    async with TestClient(chat_app()) as client, client.connect() as ws:
        await ws.send("ms:ping", 42)
        assert await ws.receive() == ("ms:pong", 42)


async def test_unknown_event_gets_an_error_with_and_without_id():
    async with TestClient(chat_app()) as client, client.connect() as ws:
        with pytest.raises(ErrorReply) as caught:
            await ws.request("nope")
        assert caught.value.code == "unknown_event"
        await ws.send("nope")
        event, payload = await ws.receive()
        assert (event, payload["code"]) == ("ms:error", "unknown_event")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"payload": 1}', "invalid_frame"),
        ('{"event": "join", "id": "1"}', "invalid_frame"),
        ('{"event": "e", "payload": NaN}', "invalid_json"),
        ('{"event": "e", "payload": ' + "[" * 20_000 + "]" * 20_000 + "}", "invalid_json"),
        ('{"event": "e", "payload": ' + "9" * 5000 + "}", "invalid_json"),
    ],
    ids=["garbage", "array", "no event", "bad id", "NaN", "deep", "huge int"],
)
async def test_bad_frames_get_an_error_and_the_connection_stays_open(frame, code):
    async with TestClient(chat_app()) as client, client.connect() as ws:
        await ws.send_text(frame)
        event, payload = await ws.receive()
        assert (event, payload["code"]) == ("ms:error", code)
        assert await ws.request("join", {"room": "still here"}) == ["still here"]


async def test_binary_frames_get_an_error():
    async with TestClient(chat_app()) as client, client.connect() as ws:
        await ws.send_bytes(b"\x00\x01")
        event, payload = await ws.receive()
        assert (event, payload["code"]) == ("ms:error", "binary_frame")


async def test_bad_frames_in_a_row_close_with_1008_and_good_ones_reset_the_count():
    async with TestClient(chat_app(max_bad_frames=3)) as client, client.connect() as ws:
        for _ in range(5):
            await ws.send_text("bad")
            await ws.send_text("bad")
            assert await ws.request("whoami")
        await ws.send_text("bad")
        await ws.send_text("bad")
        await ws.send_text("bad")
        assert await ws.wait_closed() == 1008


async def test_oversized_message_closes_with_1009():
    async with TestClient(chat_app(max_message_size=1000)) as client, client.connect() as ws:
        await ws.send("say", {"text": "x" * 1000})
        assert await ws.wait_closed() == 1009


async def test_handler_errors_are_logged_and_answered_without_internals(caplog):
    app = microsockets.Application()

    @app.on("boom")
    async def boom(ws):
        raise RuntimeError("secret database password")

    async with TestClient(app) as client, client.connect() as ws:
        with caplog.at_level(logging.ERROR, "microsockets"):
            with pytest.raises(ErrorReply) as caught:
                await ws.request("boom")
            await ws.send("boom")
            await ws.send("ms:ping")
            assert await ws.receive() == ("ms:pong", "")
    assert caught.value.code == "handler_error"
    assert "secret" not in caught.value.message
    assert [r.exc_info[1].args for r in caplog.records if r.exc_info] == [
        ("secret database password",)
    ] * 2


async def test_debug_mode_shows_the_exception_in_the_error_reply():
    app = microsockets.Application(debug=True)

    @app.on("boom")
    async def boom(ws):
        raise RuntimeError("details")

    async with TestClient(app) as client, client.connect() as ws:
        with pytest.raises(ErrorReply, match="details"):
            await ws.request("boom")


async def test_unserializable_return_value_is_a_handler_error():
    app = microsockets.Application()

    @app.on("bad")
    async def bad(ws):
        return object()

    async with TestClient(app) as client, client.connect() as ws:
        with pytest.raises(ErrorReply, match="handler_error"):
            await ws.request("bad")


async def test_handler_timeout_answers_and_keeps_the_connection():
    app = microsockets.Application(handler_timeout=0.05)

    @app.on("hang")
    async def hang(ws):
        await asyncio.sleep(3600)

    async with TestClient(app) as client, client.connect() as ws:
        with pytest.raises(ErrorReply) as caught:
            await ws.request("hang")
        assert caught.value.code == "handler_timeout"
        await ws.send("ms:ping")
        assert await ws.receive() == ("ms:pong", "")


async def test_a_handler_that_swallows_the_timeout_still_ends_and_the_next_frame_runs():
    app = microsockets.Application(handler_timeout=0.2)

    @app.on("stubborn")
    async def stubborn(ws):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "swallowed"

    @app.on("quick")
    async def quick(ws):
        await asyncio.sleep(0)  # a cancellation left pending would be raised here
        return "done"

    @app.on("hang")
    async def hang(ws):
        await asyncio.sleep(3600)

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("stubborn") == "swallowed"
        assert await ws.request("quick") == "done"
        with pytest.raises(ErrorReply, match="handler_timeout"):
            await ws.request("hang")


async def test_evicting_a_connection_cancels_the_handler_it_is_running():
    app = microsockets.Application()
    started, cancelled = asyncio.Event(), []

    @app.on("hang")
    async def hang(ws):
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(ws.event)
            raise

    async with TestClient(app) as client, client.connect() as ws:
        await ws.send("hang")
        await started.wait()
        app.evict(app.sockets()[0], 1008, "policy")
        assert await ws.wait_closed() == 1008
    assert cancelled == ["hang"]
    assert app.connections == {}


async def test_a_handlers_own_timeout_error_is_a_handler_error():
    app = microsockets.Application()

    @app.on("slow")
    async def slow(ws):
        raise TimeoutError("upstream")

    async with TestClient(app) as client, client.connect() as ws:
        with pytest.raises(ErrorReply, match="handler_error"):
            await ws.request("slow")


async def test_too_many_rooms_is_an_error_reply():
    app = chat_app(max_rooms_per_connection=2)
    async with TestClient(app) as client, client.connect() as ws:
        await ws.request("join", {"room": "a"})
        await ws.request("join", {"room": "b"})
        with pytest.raises(ErrorReply) as caught:
            await ws.request("join", {"room": "c"})
        assert caught.value.code == "too_many_rooms"
        await ws.send("join", {"room": "d"})
        assert (await ws.receive())[1]["code"] == "too_many_rooms"


async def test_before_on_hooks_wrap_handlers_outermost_first():
    app = microsockets.Application()
    calls: list[str] = []

    @app.hooks.before_on
    async def outer(ws, func):
        calls.append("outer")
        await func(ws)

    @app.hooks.before_on
    async def inner(ws, func):
        calls.append("inner")
        ws.payload = json.loads(ws.payload)
        await func(ws)

    @app.on("sum")
    async def total(ws):
        calls.append("handler")
        return sum(ws.payload)

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("sum", "[1, 2]") == 3
    assert calls == ["outer", "inner", "handler"]


async def test_a_before_on_hook_can_stop_the_handler():
    app = microsockets.Application()

    @app.hooks.before_on
    async def only_members(ws, func):
        if getattr(ws.state, "member", False):
            await func(ws)

    @app.on("secret")
    async def secret(ws):
        return "treasure"

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("secret") is None


async def test_lifespan_and_connection_hooks_run_in_order():
    app = chat_app()
    seen: list[str] = []

    @app.hooks.on_startup
    async def up():
        seen.append("startup")

    @app.hooks.on_shutdown
    async def down():
        seen.append("shutdown")

    @app.hooks.on_connect
    async def hello(ws):
        ws.state.name = ws.query_params["name"]
        seen.append(f"connect {ws.state.name}")

    @app.hooks.on_disconnect
    async def bye(ws):
        seen.append(f"disconnect {ws.state.name} rooms={await app.room_manager.rooms_of(ws.id)}")

    async with TestClient(app) as client:
        async with client.connect("/?name=ann") as ws:
            await ws.request("join", {"room": "r"})
        assert await app.room_manager.members("r") == set()
    assert seen == ["startup", "connect ann", "disconnect ann rooms=set()", "shutdown"]


async def test_on_connect_can_reject_before_any_handler_runs():
    app = chat_app()
    ran: list[str] = []

    @app.hooks.on_connect
    async def check(ws):
        if ws.query_params.get("token") != "good":
            raise microsockets.Reject("bad token")

    @app.hooks.on_disconnect
    async def bye(ws):
        ran.append("disconnect")

    async with TestClient(app) as client:
        with pytest.raises(HandshakeRejected) as caught:
            async with client.connect("/?token=bad"):
                pass
        assert caught.value.status == 403
        assert caught.value.body == b"bad token"
        async with client.connect("/?token=good") as ws:
            assert await ws.request("join", {"room": "r"}) == ["r"]
    assert ran == ["disconnect"]
    assert app.sockets() == []


async def test_on_connect_picks_subprotocol_and_headers():
    app = chat_app()

    @app.hooks.on_connect
    async def negotiate(ws):
        ws.subprotocol = "chat.v2" if "chat.v2" in ws.subprotocols else None
        ws.response_headers.append(("X-Server", "microsockets"))

    async with TestClient(app) as client:
        async with client.connect(subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert (b"x-server", b"microsockets") in ws.response_headers


async def test_socket_describes_its_request():
    app = microsockets.Application(path="/rooms/{room}")
    seen = {}

    @app.on("describe")
    async def describe(ws):
        seen.update(
            event=ws.event,
            path=ws.path,
            path_params=ws.path_params,
            query_params=dict(ws.query_params),
            all_tags=ws.query_params.getlist("tag"),
            query_string=ws.query_string,
            user_agent=ws.headers["USER-AGENT"],
            missing=ws.header("x-missing", "default"),
            client=ws.client,
            accepted=ws.accepted,
            closed=ws.closed,
            rooms=ws.rooms == {ws.id},
        )

    async with TestClient(app) as client:
        path = "/rooms/lobby?tag=a&tag=b"
        async with client.connect(path, headers={"User-Agent": "pytest"}) as ws:
            await ws.request("describe")
    assert seen == {
        "event": "describe",
        "path": "/rooms/lobby",
        "path_params": {"room": "lobby"},
        "query_params": {"tag": "b"},
        "all_tags": ["a", "b"],
        "query_string": "tag=a&tag=b",
        "user_agent": "pytest",
        "missing": "default",
        "client": ("127.0.0.1", 50000),
        "accepted": True,
        "closed": False,
        "rooms": True,
    }


async def test_event_path_refuses_other_paths_with_404():
    app = microsockets.Application(path="/ws")
    async with TestClient(app) as client:
        with pytest.raises(HandshakeRejected) as caught:
            async with client.connect("/elsewhere"):
                pass
        assert caught.value.status == 404


async def test_server_side_close_reaches_the_client_after_queued_frames():
    app = microsockets.Application()

    @app.on("kick")
    async def kick(ws):
        await ws.emit("bye", "you are kicked")
        await ws.close(4000, "kicked")
        await ws.emit("dropped", "sent after close")

    closed: list[int | None] = []

    @app.hooks.on_disconnect
    async def gone(ws):
        closed.append(ws.close_code)

    async with TestClient(app) as client, client.connect() as ws:
        await ws.send("kick")
        assert await ws.receive() == ("bye", "you are kicked")
        assert await ws.wait_closed() == 4000
        assert ws.close_reason == "kicked"
    assert closed == [4000]


async def test_on_disconnect_runs_once_with_rooms_already_left():
    app = chat_app()
    seen = []

    @app.hooks.on_disconnect
    async def gone(ws):
        seen.append((ws.closed, ws.close_code, await app.room_manager.members("r")))

    async with TestClient(app) as client:
        async with client.connect() as ws:
            await ws.request("join", {"room": "r"})
            await ws.close(1001)
    assert seen == [(True, 1001, set())]


async def test_shutdown_says_goodbye_with_1001():
    app = chat_app()
    async with TestClient(app) as client:
        ws = await client.connect().__aenter__()
        await ws.request("join", {"room": "r"})
    assert await ws.wait_closed() == 1001


async def test_one_point_oh_classes_are_accepted():
    from microsockets.events import EventRouter
    from microsockets.rooms import RoomManager

    app = microsockets.Application(event_router=EventRouter, room_manager=RoomManager)
    assert isinstance(app.router, EventRouter)
    assert isinstance(app.room_manager, microsockets.MemoryRoomManager)


async def test_a_failing_on_connect_hook_refuses_with_500(caplog):
    app = chat_app()

    @app.hooks.on_connect
    async def broken(ws):
        raise KeyError("config")

    async with TestClient(app) as client:
        with caplog.at_level(logging.ERROR, "microsockets"):
            with pytest.raises(HandshakeRejected) as caught:
                async with client.connect():
                    pass
    assert caught.value.status == 500
    assert "on_connect hook raised" in caplog.text


async def test_a_client_gone_before_the_handshake_costs_nothing():
    app = chat_app()
    received = asyncio.Queue()
    await received.put({"type": "websocket.disconnect", "code": 1006})
    sent = []

    async def send(message):
        sent.append(message)

    await app({"type": "websocket", "path": "/", "headers": []}, received.get, send)
    assert (sent, app.sockets()) == ([], [])
