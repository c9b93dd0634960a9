"""The Python client against real servers on 127.0.0.1: uvicorn in the test's loop, and in a
subprocess for kill -9, SIGTERM and SIGSTOP. Counts and codes are asserted, never timings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import example
import microsockets
from microsockets.client import ConnectionClosed, ErrorReply, SocketAPI, connect
from microsockets.testing import TestClient

from .conftest import serve

ROOT = Path(__file__).resolve().parent.parent
WAIT = 10.0


def make_app() -> microsockets.Application:
    app = microsockets.Application()

    @app.on("add")
    async def add(ws: microsockets.Socket) -> int:
        return sum(ws.payload)  # type: ignore[arg-type]

    @app.on("boom")
    async def boom(ws: microsockets.Socket) -> None:
        raise RuntimeError("boom")

    @app.on("join")
    async def join(ws: microsockets.Socket) -> None:
        await ws.join(ws.payload["room"])  # type: ignore[index]
        await ws.emit("joined")
        await ws.broadcast("user joined", {"user": ws.payload["user"]}, to=ws.payload["room"])  # type: ignore[index]

    return app


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


# One socket API, in-process and over the network.


@pytest.fixture(params=["in-process", "network"])
async def open_socket(request: Any) -> AsyncIterator[Callable[[str], Any]]:
    """Opens a socket to make_app() at a path: the only line that differs between the two."""
    app = make_app()
    if request.param == "in-process":
        async with TestClient(app) as client:
            yield client.connect
    else:
        async with serve(app) as url:
            yield lambda path: connect(url + path)


async def test_one_test_in_process_and_over_the_network(open_socket):
    async with open_socket("/") as ws:
        sock: SocketAPI = ws
        assert await sock.request("add", [1, 2], timeout=5) == 3
        with pytest.raises(ErrorReply) as caught:
            await sock.request("boom", timeout=5)
        assert caught.value.code == "handler_error"
        await sock.send("join", {"room": "r", "user": "bot"})
        assert await sock.receive(timeout=5) == ("joined", "")
        await sock.close()
        assert sock.close_code == 1000


# The README snippet, acks and error replies.


async def test_the_readme_snippet():
    async with serve(make_app()) as url:
        joins: list[Any] = []
        async with connect(url + "/") as other, connect(url + "/", params={"token": "t"}) as sock:
            await other.send("join", {"room": "r", "user": "other"})
            assert await other.receive(timeout=WAIT) == ("joined", "")

            @other.on("user joined")
            async def joined(payload: Any) -> None:
                joins.append(payload)

            await sock.send("join", {"room": "r", "user": "bot"})
            total = await sock.request("add", [1, 2], timeout=5)
            assert total == 3
            async for event, payload in sock:
                assert (event, payload) == ("joined", "")
                break
            await until(lambda: joins == [{"user": "bot"}])


async def test_acks_and_error_replies_over_the_network():
    async with serve(make_app()) as url, connect(url) as sock:
        assert await asyncio.gather(*(sock.request("add", [i, i]) for i in range(20))) == [
            2 * i for i in range(20)
        ]
        for event, payload, code in [
            ("boom", "", "handler_error"),
            ("nope", "", "unknown_event"),
            ("add", "not a list", "handler_error"),
        ]:
            with pytest.raises(ErrorReply) as caught:
                await sock.request(event, payload)
            assert caught.value.code == code
        assert await sock.request("add", [40, 2]) == 42  # still open


async def next_event(sock: Any, name: str) -> Any:
    """The payload of the next `name` event, past the others (presence diffs, say)."""
    while True:
        event, payload = await sock.receive(WAIT)
        if event == name:
            return payload


async def test_the_chat_example_between_two_python_clients():
    async with serve(example.app) as url:
        async with connect(url) as ann, connect(url) as bob:
            assert (await ann.request("join", {"room": "r", "user": "ann"}))["ok"] is True  # type: ignore[index]
            assert (await next_event(ann, "joined"))["members"] == ["ann"]
            reply = await bob.request("join", {"room": "r", "user": "bob"})
            assert reply["members"] == ["ann", "bob"]  # type: ignore[index]
            await bob.request("message", {"text": "hi"})
            assert await next_event(ann, "message") == {"user": "bob", "text": "hi"}
            assert await next_event(bob, "message") == {"user": "bob", "text": "hi"}


async def test_a_refused_handshake_reads_as_4000_plus_status():
    app = make_app()

    @app.hooks.on_connect
    async def auth(ws: microsockets.Socket) -> None:
        if ws.query_params.get("token") != "good":
            raise microsockets.Reject("bad token", status=401)

    async with serve(app) as url:
        with pytest.raises(ConnectionClosed) as caught:
            async with connect(url, params={"token": "bad"}):
                pass
        assert caught.value.code == 4401
        tokens = iter(["bad", "good"])
        async with connect(url, params=lambda: {"token": next(tokens)}) as sock:
            assert await sock.request("add", [1]) == 1


# Server restarts and a frozen server, with a uvicorn subprocess.


class Uvicorn:
    """uvicorn serving tests.helpers_apps:app on one port, restartable on that same port."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen[bytes] | None = None

    def _popen(self) -> subprocess.Popen[bytes]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        command = [sys.executable, "-m", "uvicorn", "tests.helpers_apps:app", "--fd"]
        with sock:
            return subprocess.Popen(
                [*command, str(sock.fileno()), "--log-level", "warning"],
                pass_fds=[sock.fileno()],
                cwd=ROOT,
                env={**os.environ, "MS_REPORT": ""},
            )

    async def start(self) -> None:
        self.process = self._popen()
        for _ in range(400):
            with contextlib.suppress(ConnectionClosed):
                async with connect(self.url, reconnect=False, heartbeat_interval=0):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("uvicorn did not start")

    def send_signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    async def stop(self, number: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(number)
            await asyncio.to_thread(self.process.wait, 30)


@pytest.fixture
async def uvicorn_process() -> AsyncIterator[Uvicorn]:
    server = Uvicorn()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def lobby_client(url: str, opens: list[str], closes: list[int], **options: Any) -> Any:
    """A client that joins the lobby from on_open, so every reconnect rejoins it."""
    sock = connect(url, on_close=lambda code, reason: closes.append(code), **options)

    async def rejoin() -> None:
        assert await sock.request("join", "lobby") == "ok"
        opens.append("joined")

    sock.on_open = rejoin
    return sock


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "SIGTERM"])
async def test_a_server_restart_rejoins_rooms_from_on_open(uvicorn_process, how):
    opens_a: list[str] = []
    opens_b: list[str] = []
    closes: list[int] = []
    async with (
        lobby_client(uvicorn_process.url, opens_a, closes) as a,
        lobby_client(uvicorn_process.url, opens_b, []) as b,
    ):
        await until(lambda: len(opens_a) == len(opens_b) == 1)
        await a.send("say", "before")
        assert await b.receive(WAIT) == ("said", "before")
        assert await a.receive(WAIT) == ("said", "before")
        await uvicorn_process.stop(how)
        await until(lambda: len(closes) >= 1)
        await uvicorn_process.start()
        await until(lambda: len(opens_a) == len(opens_b) == 2)
        await a.send("say", "after")
        assert await b.receive(WAIT) == ("said", "after")
        assert await a.receive(WAIT) == ("said", "after")
    assert closes[0] == (1006 if how == signal.SIGKILL else 1001)
    assert closes[-1] == 1000


async def test_the_heartbeat_finds_a_frozen_server_and_reconnects_once_it_continues(
    uvicorn_process,
):
    opens: list[str] = []
    closes: list[int] = []
    options = {"heartbeat_interval": 0.1, "heartbeat_timeout": 0.2, "connect_timeout": 0.3}
    async with lobby_client(uvicorn_process.url, opens, closes, **options) as sock:
        await until(lambda: opens == ["joined"])
        uvicorn_process.send_signal(signal.SIGSTOP)
        await until(lambda: 4000 in closes)
        assert not sock.connected
        uvicorn_process.send_signal(signal.SIGCONT)
        await until(lambda: len(opens) == 2)
        assert (await sock.request("stats"))["lobby"] == 1  # type: ignore[index]
    assert closes[0] == 4000


# A Python client and a Chromium tab in one room.


async def test_a_python_client_and_a_chromium_tab_talk_in_one_room():
    async with serve(example.app) as url:
        http = url.replace("ws://", "http://") + "/"
        tab = await asyncio.create_subprocess_exec(
            "node", str(ROOT / "tests" / "chromium_tab.mjs"), http, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert tab.stdout is not None
            line = await asyncio.wait_for(tab.stdout.readline(), 60)
            assert line == b"ready\n"
            async with connect(url) as py:
                reply = await py.request("join", {"room": "mixed", "user": "py"})
                assert reply["members"] == ["py", "tab"]  # type: ignore[index]
                await py.request("message", {"text": "hello from python"})
                said = [item async for item in _until_message(py, "tab")]
                assert said == [{"user": "tab", "text": "hello from chromium"}]
            assert await asyncio.wait_for(tab.stdout.readline(), 30) == b"done\n"
            assert await asyncio.wait_for(tab.wait(), 30) == 0
        finally:
            if tab.returncode is None:
                tab.kill()
                await tab.wait()


async def _until_message(sock: Any, user: str) -> AsyncIterator[Any]:
    """The first `message` event from `user` (the others' events are skipped)."""
    while True:
        event, payload = await sock.receive(WAIT)
        if event == "message" and payload["user"] == user:
            yield payload
            return


async def test_presence_lists_who_is_in_the_room_and_sees_them_go():
    async with serve(example.app) as url:
        async with connect(url) as ann:
            changes: list[tuple[dict[str, Any], dict[str, Any]]] = []
            ann.on_presence("r", lambda state, diff: changes.append((state, dict(diff.leaves))))
            await ann.request("join", {"room": "r", "user": "ann"})
            async with connect(url) as bob:
                await bob.request("join", {"room": "r", "user": "bob"})
                await until(lambda: len(ann.presence("r")) == 2)
                await until(lambda: len(bob.presence("r")) == 2)
                assert sorted(m["user"] for m in ann.presence("r").values()) == ["ann", "bob"]
                assert ann.presence("r") == bob.presence("r")
                assert ann.presence_count("r") == 2
                bob_id = bob.id
            await until(lambda: bob_id not in ann.presence("r"))
            assert list(ann.presence("r").values()) == [{"user": "ann"}]
            assert changes[-1][1] == {bob_id: {"user": "bob"}}  # one leave, with its meta
