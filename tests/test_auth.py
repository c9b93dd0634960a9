"""Authentication done right, over a real uvicorn: the pattern of docs/security.md.

The credential (a token in the query string, a header or a cookie) is checked in an
`on_connect` hook, before the handshake is accepted: a bad one gets HTTP 403 and no handler
ever runs. The Origin check refuses cross-site pages (Cross-Site WebSocket Hijacking) before
any hook runs, so a victim's cookie is worth nothing to a foreign page.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from typing import Any

import pytest
import websockets

import microsockets

from .conftest import serve
from .test_faults import request

USERS = {"s3cret-ann": "ann", "s3cret-bob": "bob"}


def lookup(token: str | None) -> str | None:
    """The user a token belongs to; compared in constant time."""
    if not token:
        return None
    for known, user in USERS.items():
        if hmac.compare_digest(token.encode(), known.encode()):
            return user
    return None


def token_of(ws: microsockets.Connection) -> str | None:
    """A token from the query string, the Authorization header or the session cookie."""
    if "token" in ws.query_params:
        return ws.query_params["token"]
    authorization = ws.header("authorization", "")
    if authorization and authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ")
    cookie = SimpleCookie(ws.header("cookie", "") or "")
    return cookie["session"].value if "session" in cookie else None


def make_app(**options: Any) -> tuple[microsockets.Application, dict[str, int]]:
    app = microsockets.Application(**options)
    calls = {"on_connect": 0, "handlers": 0, "on_disconnect": 0}

    @app.hooks.on_connect
    async def authenticate(ws):
        calls["on_connect"] += 1
        user = lookup(token_of(ws))
        if user is None:
            raise microsockets.Reject("bad token")
        ws.state.user = user

    @app.on("whoami")
    async def whoami(ws):
        calls["handlers"] += 1
        return ws.state.user

    @app.hooks.on_disconnect
    async def gone(ws):
        calls["on_disconnect"] += 1

    return app, calls


async def assert_refused(url: str, status: int = 403, **options: Any) -> bytes:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, **options)
    assert refused.value.response.status_code == status
    return refused.value.response.body


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/?token=s3cret-ann", {}, id="query"),
        pytest.param("/", {"Authorization": "Bearer s3cret-ann"}, id="header"),
        pytest.param("/", {"Cookie": "theme=dark; session=s3cret-ann"}, id="cookie"),
    ],
)
async def test_a_good_token_is_accepted_and_the_user_stored(path: str, headers: dict[str, str]):
    app, calls = make_app()
    async with serve(app) as url:
        async with websockets.connect(url + path, additional_headers=headers) as ws:
            assert (await request(ws, "whoami"))["payload"] == "ann"
    assert calls == {"on_connect": 1, "handlers": 1, "on_disconnect": 1}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/", {}, id="none"),
        pytest.param("/?token=s3cret-eve", {}, id="wrong-query"),
        pytest.param("/?token=", {}, id="empty-query"),
        pytest.param("/", {"Authorization": "Bearer nope"}, id="wrong-header"),
        pytest.param("/", {"Authorization": "Basic s3cret-ann"}, id="wrong-scheme"),
        pytest.param("/", {"Cookie": "session=s3cret-an"}, id="wrong-cookie"),
    ],
)
async def test_a_bad_token_is_refused_with_403_before_accept(path: str, headers: dict[str, str]):
    app, calls = make_app()
    async with serve(app) as url:
        body = await assert_refused(url + path, additional_headers=headers)
        assert body == b"bad token"
        assert app.connections == {}
    assert calls == {"on_connect": 1, "handlers": 0, "on_disconnect": 0}


async def test_reject_may_choose_the_status():
    app = microsockets.Application()

    @app.hooks.on_connect
    async def authenticate(ws):
        if "token" not in ws.query_params:
            raise microsockets.Reject("log in first", 401)

    async with serve(app) as url:
        assert await assert_refused(url, 401) == b"log in first"


# Cross-Site WebSocket Hijacking: a page on another site opens a socket to us; the browser
# attaches our cookie and the page's Origin. The Origin check must refuse it.


async def test_foreign_origin_is_refused_even_with_a_valid_cookie():
    app, calls = make_app()
    cookie = {"Cookie": "session=s3cret-ann"}
    async with serve(app) as url:
        host = url.removeprefix("ws://")
        for origin in (
            "https://evil.example",
            f"http://{host}.evil.example",
            f"https://evil.example/{host}",
            "http://127.0.0.2:" + host.split(":")[1],
            "null",  # a sandboxed iframe or a page opened from disk
        ):
            await assert_refused(url, additional_headers={**cookie, "Origin": origin})
        assert calls["on_connect"] == 0  # refused before any hook could run
        # The same site (Origin matches Host), and non-browser clients (no Origin), pass.
        for extra in ({"Origin": f"http://{host}"}, {}):
            async with websockets.connect(url, additional_headers={**cookie, **extra}) as ws:
                assert (await request(ws, "whoami"))["payload"] == "ann"
    assert calls["handlers"] == 2


async def test_listed_origins_and_null():
    app, _ = make_app(allowed_origins=["https://app.example", "null"])
    cookie = {"Cookie": "session=s3cret-bob"}
    async with serve(app) as url:
        for origin in ("https://app.example", "null"):
            headers = {**cookie, "Origin": origin}
            async with websockets.connect(url, additional_headers=headers) as ws:
                assert (await request(ws, "whoami"))["payload"] == "bob"
        host = url.removeprefix("ws://")
        for origin in ("https://evil.example", f"http://{host}", "https://app.example.evil"):
            await assert_refused(url, additional_headers={**cookie, "Origin": origin})


async def test_origin_predicate():
    app, _ = make_app(allowed_origins=lambda origin: origin.endswith(".app.example"))
    cookie = {"Cookie": "session=s3cret-bob"}
    async with serve(app) as url:
        headers = {**cookie, "Origin": "https://eu.app.example"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            assert (await request(ws, "whoami"))["payload"] == "bob"
        await assert_refused(url, additional_headers={**cookie, "Origin": "https://app.example"})


async def test_a_refused_origin_is_logged(caplog):
    app, _ = make_app()
    async with serve(app) as url:
        await assert_refused(url, additional_headers={"Origin": "https://evil.example"})
    assert any(
        "refused Origin 'https://evil.example'" in r.getMessage() and r.levelname == "WARNING"
        for r in caplog.records
    )


# Behind a reverse proxy.


def whoami_app(**options: Any) -> microsockets.Application:
    app = microsockets.Application(**options)

    @app.on("where")
    async def where(ws):
        return {"client": ws.client[0], "path": ws.path, "root_path": ws.scope["root_path"]}

    return app


@pytest.mark.parametrize(
    ("trusted", "seen"),
    [
        pytest.param("127.0.0.1", "203.0.113.7", id="proxy-trusted"),
        pytest.param("10.9.9.9", "127.0.0.1", id="proxy-not-trusted"),
    ],
)
async def test_x_forwarded_for_is_believed_only_from_trusted_proxies(trusted: str, seen: str):
    app = whoami_app()
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    async with (
        serve(app, proxy_headers=True, forwarded_allow_ips=trusted) as url,
        websockets.connect(url, additional_headers=headers) as ws,
    ):
        assert (await request(ws, "where"))["payload"]["client"] == seen


async def test_root_path_when_the_proxy_strips_a_prefix():
    """The proxy serves us at /chat/ws and forwards /ws; uvicorn --root-path /chat."""
    app = whoami_app(path="/ws")
    async with serve(app, root_path="/chat") as url:
        async with websockets.connect(url + "/ws") as ws:
            reply = (await request(ws, "where"))["payload"]
            assert reply == {"client": "127.0.0.1", "path": "/ws", "root_path": "/chat"}
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(url + "/other")
