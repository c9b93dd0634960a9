"""The Python client's session recovery and token refresh against a real uvicorn, through a
TCP proxy on 127.0.0.1 that the test cuts (tests/proxy.py). Counts and orders are asserted,
never timings."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

import microsockets
from microsockets.client import MAX_REFUSALS, ConnectionClosed, connect

from .conftest import serve
from .proxy import Proxy
from .test_client import WAIT, until

CUT_SECONDS = 2.0
PUBLISH_EVERY = 0.01


def news_app() -> microsockets.Application:
    """Recovery on; `join` puts the socket in the room the payload names."""
    app = microsockets.Application(recovery_window=30.0)

    @app.on("join")
    async def join(ws: microsockets.Socket) -> str:
        await ws.join(str(ws.payload))
        return "ok"

    return app


@contextlib.asynccontextmanager
async def proxied(app: microsockets.Application) -> AsyncIterator[tuple[Proxy, str]]:
    """uvicorn serving `app`, and a proxy to it; yields the proxy and its ws:// URL."""
    async with serve(app) as url:
        host, port = url.removeprefix("ws://").split(":")
        proxy = Proxy((host, int(port)))
        try:
            yield proxy, f"ws://127.0.0.1:{await proxy.start()}/"
        finally:
            await proxy.stop()


async def test_recovery_across_a_cut_proxy_delivers_every_number_once_in_order():
    app = news_app()
    opens: list[tuple[str, bool]] = []
    received: list[Any] = []
    async with proxied(app) as (proxy, url):
        sock = connect(url)
        sock.on_open = lambda: opens.append((sock.id, sock.recovered))
        async with sock:
            assert await sock.request("join", "news") == "ok"
            published = 0
            publishing = True

            async def publish() -> None:
                nonlocal published
                while publishing:
                    await app.broadcast("n", published, to="news")
                    published += 1
                    await asyncio.sleep(PUBLISH_EVERY)

            async def consume() -> None:
                async for event, payload in sock:
                    assert event == "n"
                    received.append(payload)

            publisher = asyncio.create_task(publish())
            consumer = asyncio.create_task(consume())
            await until(lambda: len(received) >= 10)
            proxy.cut()
            await asyncio.sleep(CUT_SECONDS)
            cut_during = published
            proxy.restore()
            await until(lambda: len(opens) == 2)
            await until(lambda: len(received) > cut_during + 10)
            publishing = False
            await publisher
            await until(lambda: len(received) == published)
            consumer.cancel()
            assert received == list(range(published))  # each number once, in order
            assert sock.recovered is True
            assert opens == [(sock.id, False), (sock.id, True)]
    assert proxy.accepted >= 2


class Tickets:
    """Single-use tickets: the test issues them, the server's on_connect spends them."""

    def __init__(self, app: microsockets.Application) -> None:
        self.issued: list[str] = []
        self.unspent: set[str] = set()
        self.handshakes: list[str] = []
        """The ticket of every handshake the server saw, in order."""

        @app.hooks.on_connect
        async def spend(ws: microsockets.Socket) -> None:
            ticket = ws.query_params.get("ticket", "")
            self.handshakes.append(ticket)
            if ticket not in self.unspent:
                raise microsockets.Reject("ticket unknown or spent: get a new one", status=401)
            self.unspent.discard(ticket)

    def issue(self) -> dict[str, str]:
        """Fresh `params` for one attempt."""
        ticket = secrets.token_urlsafe(16)
        self.issued.append(ticket)
        self.unspent.add(ticket)
        return {"ticket": ticket}


async def test_a_params_function_reconnects_with_a_fresh_ticket_after_a_cut():
    app = news_app()
    tickets = Tickets(app)
    opens: list[bool] = []
    async with proxied(app) as (proxy, url):
        sock = connect(url, params=tickets.issue)
        sock.on_open = lambda: opens.append(sock.recovered)
        async with sock:
            assert await sock.request("join", "news") == "ok"
            first_id = sock.id
            proxy.cut()
            await until(lambda: len(tickets.issued) >= 3)  # an attempt failed at the proxy
            proxy.restore()
            await until(lambda: len(opens) == 2)
            assert await sock.request("join", "news") == "ok"
            assert sock.id == first_id
    assert opens == [False, True]
    assert len(set(tickets.issued)) == len(tickets.issued)  # a fresh ticket each attempt
    assert tickets.handshakes == [tickets.issued[0], tickets.issued[-1]]  # both spent once
    assert tickets.unspent.isdisjoint(tickets.handshakes)


async def test_a_static_bad_ticket_stops_after_one_refusal():
    app = news_app()
    tickets = Tickets(app)
    async with serve(app) as url:
        closes: list[tuple[int, str]] = []
        sock = connect(url, params={"ticket": "bad"}, on_close=lambda *c: closes.append(c))
        with pytest.raises(ConnectionClosed) as caught:
            async with sock:
                raise AssertionError("a refused handshake opened")
        refusal = (caught.value.code, caught.value.reason)
        assert refusal == (4401, "ticket unknown or spent: get a new one")
        assert (sock.close_code, sock.close_reason) == refusal
        assert closes == [refusal]
    assert tickets.handshakes == ["bad"]


async def test_a_params_function_of_spent_tickets_stops_after_max_refusals():
    app = news_app()
    tickets = Tickets(app)
    async with serve(app) as url:
        sock = connect(url, params=lambda: {"ticket": "spent"})
        with pytest.raises(ConnectionClosed) as caught:
            async with asyncio.timeout(WAIT), sock:
                raise AssertionError("a refused handshake opened")
        assert caught.value.code == 4401
    assert tickets.handshakes == ["spent"] * (1 + MAX_REFUSALS)
