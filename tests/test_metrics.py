"""Prometheus metrics (docs/observability.md): a scripted session on a real uvicorn whose
scrape, read with prometheus_client's own parser, equals what the script did."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

import microsockets
from microsockets.rooms.redis import RedisRoomManager
from tests.conftest import free_port, serve
from tests.helpers_ws import RawClient

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import RedisServer, eventually  # noqa: E402

pytest_plugins = ["tests.redis_server"]

ROOT = Path(__file__).resolve().parent.parent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(url: str) -> Samples:
    http = url.replace("ws://", "http://") + "/metrics"

    def get() -> str:
        with urllib.request.urlopen(http, timeout=10) as response:
            assert response.status == 200
            assert response.headers["content-type"].startswith("text/plain")
            return str(response.read().decode())

    return parse(await asyncio.to_thread(get))


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def make_app(**options: Any) -> microsockets.Application:
    app = microsockets.Application(metrics=True, path="/ws", **options)
    app.http_app = app.metrics_app

    @app.on("echo")
    async def echo(ws: microsockets.Socket) -> None:
        await ws.emit("echo", ws.payload)

    @app.on("boom")
    async def boom(ws: microsockets.Socket) -> None:
        raise RuntimeError("a bug in a handler")

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(str(ws.payload))
        return "joined"

    @app.on("publish")
    async def publish(ws: microsockets.Socket) -> None:
        await ws.broadcast("news", ws.payload, to=["lobby"], skip_self=False)

    @app.on("flood")
    async def flood(ws: microsockets.Socket) -> None:
        for _ in range(int(ws.payload)):
            await ws.broadcast("big", "x" * 16_000, to=["slow"])

    @app.websocket("/raw")
    async def raw(ws: microsockets.RawSocket) -> None:
        await ws.accept()
        async for text in ws:
            await ws.send_text(str(text))

    return app


class Client:
    """A well-behaved client that counts what it sends and receives."""

    def __init__(self, conn: ClientConnection, script: Script) -> None:
        self.conn, self.script = conn, script

    async def send(self, data: str | bytes) -> None:
        await self.conn.send(data)
        self.script.frames_in += 1
        self.script.bytes_in += len(data.encode() if isinstance(data, str) else data)

    async def call(self, event: str, payload: Any = "", ack: int | None = None) -> dict[str, Any]:
        frame = {"event": event, "payload": payload, **({"id": ack} if ack else {})}
        await self.send(json.dumps(frame))
        return await self.receive()

    async def receive(self) -> dict[str, Any]:
        text = await asyncio.wait_for(self.conn.recv(), 10)
        self.script.took(text)
        reply: dict[str, Any] = json.loads(text)
        if reply["event"] == "ms:error":
            self.script.errors[reply["payload"]["code"]] += 1
        return reply


class Script:
    """What the clients did and saw, to compare with the scrape."""

    def __init__(self) -> None:
        self.frames_in = self.bytes_in = self.frames_out = self.bytes_out = 0
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.opened: Counter[str] = Counter()

    def took(self, data: str | bytes) -> None:
        self.frames_out += 1
        self.bytes_out += len(data.encode() if isinstance(data, str) else data)

    async def open(self, url: str, path: str = "/ws") -> Client:
        conn = await connect(url + path, max_size=None)
        self.opened["raw" if path == "/raw" else "event"] += 1
        return Client(conn, self)


@pytest.mark.redis
async def test_a_scripted_session_is_counted_exactly(own_redis_server: RedisServer) -> None:
    rooms = RedisRoomManager(
        own_redis_server.url, pending_timeout=0.5, reconnect_delays=(0.05,), node_ttl=1.5
    )
    app = make_app(
        room_manager=rooms,
        max_message_size=50_000,
        rate_limit=0.5,
        rate_burst=30,
        send_queue_limit=64_000,
    )
    script = Script()
    clients, messages = 4, 5
    async with serve(app) as url:
        before = await scrape(url)
        assert value(before, "microsockets_redis_up") == 1
        assert value(before, "microsockets_connections", kind="event") == 0
        users = [await script.open(url) for _ in range(clients)]
        for user in users:  # M frames each
            assert (await user.call("join", "lobby", ack=1))["payload"] == "joined"
            for i in range(messages):
                assert (await user.call("echo", i))["payload"] == i
        first = users[0]
        await first.call("publish", "hello")  # one broadcast, to every user
        for user in users[1:]:
            assert (await user.receive())["event"] == "news"

        # One bad frame of each kind, and a handler error.
        await first.call("echo", "good")  # then the bad ones:
        await first.send("{not json")
        await first.receive()
        await first.send("[1, 2]")
        await first.receive()
        await first.send(b"\x00binary")
        await first.receive()
        await first.call("no-such-event")
        await first.call("boom", ack=3)
        flooder = await script.open(url)  # rate_limited: past the burst of 30
        for _ in range(33):
            await flooder.send(json.dumps({"event": "echo", "payload": 0}))
        for _ in range(33):
            await flooder.receive()
        assert script.errors["rate_limited"] >= 1
        too_big = await script.open(url)  # message_too_big closes with 1009
        await too_big.send(json.dumps({"event": "echo", "payload": "x" * 60_000}))
        with pytest.raises(Exception):  # noqa: B017, PT011 - the server closed it
            await too_big.receive()
        assert too_big.conn.close_code == 1009
        script.errors["message_too_big"] += 1
        script.closes["1009"] += 1

        # One eviction by slow consumer: a client that joined "slow" and stopped reading.
        stalled = await RawClient.connect(url, "/ws", rcvbuf=4096)
        script.opened["event"] += 1
        join = json.dumps({"event": "join", "payload": "slow", "id": 9})
        await stalled.send_text(join)
        script.frames_in += 1
        script.bytes_in += len(join)
        await eventually(lambda: app.room_manager.index.room_size("slow") == 1, 5)
        await first.send(json.dumps({"event": "flood", "payload": 200}))  # no reply
        await eventually(lambda: len(app.connections) == clients + 1, 10)
        code, texts = await stalled.read_until_close()
        stalled.close()
        assert code in (1013, None)  # the close frame, or EOF if it could not be written
        for text in texts:
            script.took(text)
        script.closes["1013"] += 1

        # One Redis outage: broadcasts made while it is down never reach Redis.
        own_redis_server.stop()
        transport = rooms.transport
        await eventually(lambda: not transport.commands_up and not transport.pubsub_up, 10)
        assert value(await scrape(url), "microsockets_redis_up") == 0
        for i in range(3):
            await first.call("publish", i)
            for user in users[1:]:
                assert (await user.receive())["payload"] == i
        await asyncio.sleep(0.6)  # past pending_timeout: they will not be published later
        own_redis_server.start()
        await eventually(lambda: rooms.redis_available, 10)
        await eventually(lambda: rooms.transport.pending == 0, 5)

        # A raw route, and the closes with known codes.
        raw = await script.open(url, "/raw")
        await raw.send("ping")
        script.took(await raw.conn.recv())
        await raw.conn.close(1000)
        script.closes["1000"] += 1
        for user, close in zip(users, (1000, 1000, 1001, 4000), strict=True):
            await user.conn.close(close)
            script.closes[str(close) if close < 4000 else "other"] += 1
        await flooder.conn.close(1000)
        script.closes["1000"] += 1
        await eventually(lambda: not app.connections and not app.connections.raw_count, 5)
        # redis-py may find a pooled connection from before the outage dead once more.
        await eventually(lambda: rooms.redis_available, 10)
        samples = await scrape(url)

    opened = sum(script.opened.values())
    assert value(samples, "microsockets_connections", kind="event") == 0
    assert value(samples, "microsockets_connections", kind="raw") == 0
    for kind in ("event", "raw"):
        assert (
            value(samples, "microsockets_connections_opened_total", kind=kind)
            == (script.opened[kind])
        )
    disconnects = {
        labels[0][1]: found
        for (name, labels), found in samples.items()
        if name == "microsockets_disconnects_total"
    }
    assert disconnects == dict(script.closes)
    assert sum(disconnects.values()) == opened
    assert value(samples, "microsockets_frames_received_total") == script.frames_in
    assert value(samples, "microsockets_bytes_received_total") == script.bytes_in
    assert value(samples, "microsockets_frames_sent_total") == script.frames_out
    assert value(samples, "microsockets_bytes_sent_total") == script.bytes_out
    errors = {
        labels[0][1]: found
        for (name, labels), found in samples.items()
        if name == "microsockets_errors_total"
    }
    assert errors == dict(script.errors)
    assert set(errors) == {
        "invalid_json",
        "invalid_frame",
        "binary_frame",
        "unknown_event",
        "handler_error",
        "rate_limited",
        "message_too_big",
    }
    assert value(samples, "microsockets_evictions_total", reason="slow_consumer") == 1
    assert value(samples, "microsockets_evictions_total", reason="app") == 0
    assert value(samples, "microsockets_rooms") == 0
    assert value(samples, "microsockets_redis_up") == 1
    assert value(samples, "microsockets_redis_publish_queue") == 0
    assert value(samples, "microsockets_redis_dropped_total") == 3
    broadcasts = 1 + 200 + 3
    assert value(samples, "microsockets_broadcast_recipients_count") == broadcasts
    # The flood never yields, so the evicted client stays in "slow" for all 200.
    recipients = clients + 200 * 1 + 3 * clients
    assert value(samples, "microsockets_broadcast_recipients_sum") == recipients
    handled = Counter({"join": clients + 1, "echo": clients * messages + 1, "boom": 1})
    handled["publish"], handled["flood"] = 4, 1
    handled["echo"] += 33 - script.errors["rate_limited"]
    for event, count in handled.items():
        assert value(samples, "microsockets_handler_seconds_count", event=event) == count
    assert value(samples, "microsockets_sessions_recovered_total") == 0
    assert value(samples, "microsockets_presence_entries") == 0


async def test_unknown_events_create_no_series() -> None:
    """10,000 distinct unknown event names: one error series, no label per name."""
    app = make_app(max_bad_frames=20_000, rate_limit=None)
    async with serve(app) as url:
        async with connect(url + "/ws") as conn:
            await conn.send(json.dumps({"event": "echo", "payload": 1}))
            await conn.recv()
            await conn.send(json.dumps({"event": "first-unknown"}))
            await conn.recv()
            before = await scrape(url)
            for i in range(10_000):
                await conn.send(json.dumps({"event": f"unknown-{i}"}))
            for _ in range(10_000):
                assert json.loads(await conn.recv())["payload"]["code"] == "unknown_event"
            after = await scrape(url)
    assert set(after) == set(before)
    assert value(after, "microsockets_errors_total", code="unknown_event") == 10_001
    events = {dict(labels).get("event") for name, labels in after if "handler" in name}
    assert events == {"echo"}


async def test_metrics_are_off_by_default_and_say_how_to_turn_them_on() -> None:
    app = microsockets.Application()
    assert app.metrics is None
    with pytest.raises(RuntimeError, match=r"Application\(metrics=True\)"):
        _ = app.metrics_app


def test_an_app_without_metrics_does_not_import_prometheus_client() -> None:
    code = (
        "import sys, microsockets\n"
        "from microsockets.rooms.redis import RedisRoomManager\n"
        "microsockets.Application(room_manager=RedisRoomManager('redis://127.0.0.1:1'))\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
        "microsockets.Application(metrics=True)\n"
        "assert 'prometheus_client' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_presence_entries_are_read_from_the_rooms() -> None:
    """The gauge reads the presence book at each scrape, so it cannot drift."""
    app = make_app()

    @app.on("show")
    async def show(ws: microsockets.Socket) -> None:
        await ws.join("lobby", presence={"n": ws.payload})

    async with serve(app) as url:
        clients = [await connect(url + "/ws") for _ in range(3)]
        for n, client in enumerate(clients):
            await client.send(json.dumps({"event": "show", "payload": n, "id": 1}))
        await eventually(lambda: len(app.sockets()) == 3, 5)
        await eventually(lambda: _presence_size(app) == 3, 5)
        assert value(await scrape(url), "microsockets_presence_entries") == 3
        await clients[0].close()
        await eventually(lambda: _presence_size(app) == 2, 5)
        assert value(await scrape(url), "microsockets_presence_entries") == 2
        for client in clients[1:]:
            await client.close()


def _presence_size(app: microsockets.Application) -> int:
    book = app.room_manager.presence_book  # type: ignore[attr-defined]
    return sum(len(entries) for entries in book.entries.values())


async def test_every_log_line_about_a_connection_names_its_id_and_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()

    @app.on("whoami")
    async def whoami(ws: microsockets.Socket) -> list[Any]:
        return [ws.id, list(ws.client or ())]

    async with serve(app) as url:
        async with connect(url + "/ws") as conn:
            await conn.send(json.dumps({"event": "whoami", "id": 1}))
            conn_id, (host, port) = json.loads(await conn.recv())["payload"]
            await conn.send(json.dumps({"event": "boom"}))
            await conn.send("{bad")
            await conn.recv()
    lines = [r for r in caplog.records if r.name == "microsockets"]
    assert len(lines) >= 1
    for record in lines:
        assert record.getMessage().startswith(f"connection {conn_id} from {host}:{port}: ")
        assert record.__dict__["connection_id"] == conn_id
        assert record.__dict__["client"] == f"{host}:{port}"


APP = """
import os
import microsockets

app = microsockets.Application(metrics=True, path="/ws")
app.http_app = app.metrics_app


@app.on("pid")
async def pid(ws):
    return os.getpid()
"""


def start_workers(app_dir: Path, store: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "two_workers_app:app", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--app-dir", str(app_dir),
         "--log-level", "warning"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(store)},
    )  # fmt: skip


async def test_two_uvicorn_workers_one_scrape_the_sum_is_right(tmp_path: Path) -> None:
    """prometheus_client's multiprocess mode: each worker writes, one scrape sums them."""
    (tmp_path / "two_workers_app.py").write_text(APP)
    store = tmp_path / "prometheus"
    store.mkdir()
    port = free_port()
    server = start_workers(tmp_path, store, port)
    url = f"ws://127.0.0.1:{port}"
    conns: list[ClientConnection] = []
    try:
        for _ in range(200):
            try:
                await scrape(url)
                break
            except OSError:
                await asyncio.sleep(0.05)
        pids: Counter[int] = Counter()
        calls = 0
        while len(pids) < 2 or len(conns) < 6:  # until both workers hold connections
            assert len(conns) < 60, "the kernel gave every connection to one worker"
            conn = await connect(url + "/ws")
            conns.append(conn)
            for i in range(3):
                await conn.send(json.dumps({"event": "pid", "id": i + 1}))
                pids[json.loads(await conn.recv())["payload"]] += 1
                calls += 1

        async def summed() -> bool:
            samples = await scrape(url)
            return (
                value(samples, "microsockets_connections", kind="event") == len(conns)
                and value(samples, "microsockets_connections_opened_total", kind="event")
                == len(conns)
                and value(samples, "microsockets_frames_received_total") == calls
                and value(samples, "microsockets_frames_sent_total") == calls
                and value(samples, "microsockets_handler_seconds_count", event="pid") == calls
            )

        await eventually(summed, 10)  # each worker flushes every second
        for conn in conns:
            await conn.close()

        async def closed() -> bool:
            samples = await scrape(url)
            return value(samples, "microsockets_connections", kind="event") == 0 and value(
                samples, "microsockets_disconnects_total", code="1000"
            ) == len(conns)

        await eventually(closed, 10)
        assert len(pids) == 2
    finally:
        for conn in conns:
            await conn.close()
        server.terminate()
        server.wait(30)


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    app = microsockets.Application(
        metrics=True, room_manager=RedisRoomManager("redis://127.0.0.1:1")
    )
    assert app.metrics is not None
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count")}
    known = {
        family.name + suffix
        for family in app.metrics.registry.collect()
        for suffix in suffixes[family.type]
    }
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    used = {name for expr in exprs for name in re.findall(r"microsockets_\w+", expr)}
    assert used <= known
    for family in app.metrics.registry.collect():  # every metric has a panel
        assert any(family.name in expr for expr in exprs), family.name
    assert any("histogram_quantile(0.99" in expr and "handler_seconds" in expr for expr in exprs)
    assert any("histogram_quantile(0.5" in expr and "handler_seconds" in expr for expr in exprs)


async def test_recovered_and_not_recovered_sessions_are_counted() -> None:
    app = make_app(recovery_window=30)
    async with serve(app) as url:
        first = await connect(url + "/ws?ms_v=2")
        session = json.loads(await first.recv())["payload"]
        first.transport.abort()  # the connection dies without a close: the session waits
        await eventually(lambda: not app.connections, 5)
        query = f"ms_v=2&ms_id={session['id']}&ms_token={session['token']}&ms_offset="
        again = await connect(f"{url}/ws?{query}")
        assert json.loads(await again.recv())["payload"]["recovered"] is True
        spent = await connect(f"{url}/ws?{query}")  # the token is single-use
        assert json.loads(await spent.recv())["payload"]["recovered"] is False
        samples = await scrape(url)
        for ws in (again, spent):
            await ws.close()
    assert value(samples, "microsockets_sessions_recovered_total") == 1
    assert value(samples, "microsockets_sessions_not_recovered_total") == 1
