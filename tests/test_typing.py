"""Typed handlers: validation with pydantic and msgspec, typed acks and events, the documents."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import microsockets
from microsockets.codec import DEFAULT, STDLIB
from microsockets.contract.typescript import typescript
from microsockets.testing import ErrorReply, TestClient
from tests.conftest import serve
from tests.typed_app import Point, Tick, UserJoined
from tests.typed_app import app as typed_app

REPO = Path(__file__).resolve().parent.parent


async def request_error(ws: Any, event: str, payload: Any) -> ErrorReply:
    with pytest.raises(ErrorReply) as caught:
        await ws.request(event, payload)
    return caught.value


async def test_valid_payloads_of_every_kind_reach_the_handler_and_acks_are_serialised():
    async with TestClient(typed_app) as client, client.connect() as ws:
        assert await ws.request("join", {"room": "r", "user": "ann"}) == {
            "room": "r",
            "members": ["ann"],
        }
        assert await ws.request("move", {"x": 1, "y": 2}) == {"x": 2, "y": 3, "label": ""}
        paint = {"colour": "red", "points": [{"x": 1, "y": 2.5}]}
        assert await ws.request("paint", paint) == [{"x": 2, "y": 5.0}]
        assert await ws.request("add", [1, 2, 3]) == 6
        assert await ws.request("where", {"x": 0.5, "y": -1}) == {"x": 0.5, "y": -1}
        assert await ws.request("anything", "raw") == {"got": "raw"}
        assert await ws.request("plain", '{"not": "decoded"}') == '{"not": "decoded"}'


@pytest.mark.parametrize(
    ("event", "payload", "message"),
    [
        # pydantic names every failing field
        (
            "join",
            {"room": "r", "user": "x" * 33},
            "$.user: string should have at most 32 characters",
        ),
        ("join", {"user": 5}, "$.room: field required; $.user: input should be a valid string"),
        ("join", "not an object", "$: input should be a valid dictionary or instance of Join"),
        # msgspec stops at the first
        ("move", {"x": 1}, "$.y: field required"),
        ("move", {"x": 1, "y": "2"}, "$.y: expected int, got str"),
        ("move", {"x": 1, "y": 2, "label": "x" * 9}, "$.label: expected str of length <= 8"),
        ("paint", {"colour": "green", "points": []}, "$.colour: invalid enum value 'green'"),
        ("paint", {"colour": "red", "points": [{"x": 1}]}, "$.points[0].y: field required"),
        ("add", [1, "2"], "$[1]: expected int, got str"),
        ("where", [1, 2], "$: expected object, got array"),
    ],
)
async def test_invalid_payloads_get_invalid_payload_naming_each_field(event, payload, message):
    async with TestClient(typed_app) as client, client.connect() as ws:
        error = await request_error(ws, event, payload)
        assert (error.code, error.message) == ("invalid_payload", message)
        assert await ws.request("add", [1]) == 1  # the connection stays open


async def test_invalid_payload_without_id_is_answered_too_and_counts_as_a_bad_frame():
    app = microsockets.Application(max_bad_frames=3)

    @app.on("add")
    async def add(ws, data: list[int]) -> int:
        return sum(data)

    async with TestClient(app) as client, client.connect() as ws:
        await ws.send("add", ["x"])
        event, payload = await ws.receive()
        assert (event, payload["code"]) == ("ms:error", "invalid_payload")
        assert await ws.request("add", [1]) == 1
        for _ in range(3):  # a good frame resets the count
            await ws.send("add", ["x"])
            await ws.send_text("not json")
            assert await ws.request("add", [2]) == 2
        frames = [json.dumps({"event": "add", "payload": "x", "id": n}) for n in (1, 2, 3)]
        for frame in frames:
            await ws.send_text(frame)
        replies = [json.loads(await ws.receive_text()) for _ in frames]
        assert [(r["id"], r["payload"]["code"]) for r in replies] == [
            (1, "invalid_payload"),
            (2, "invalid_payload"),
            (3, "invalid_payload"),
        ]
        assert await ws.wait_closed() == 1008


async def test_many_failing_fields_are_capped():
    app = microsockets.Application()

    class Numbers(BaseModel):
        values: list[int]

    app.router.add("sum", _numbers_handler(Numbers))
    async with TestClient(app) as client, client.connect() as ws:
        error = await request_error(ws, "sum", {"values": ["x"] * 50})
        parts = error.message.split("; ")
        assert (
            parts[0]
            == "$.values[0]: input should be a valid integer, unable to parse string as an integer"
        )
        assert (len(parts), parts[-1]) == (11, "and 40 more")


def _numbers_handler(model: type) -> Any:
    async def total(ws, data) -> int:
        return sum(data.values)

    total.__annotations__ = {"data": model, "return": int}
    return total


async def test_declared_events_carry_models_serialised_once_per_broadcast(monkeypatch):
    dumps = []
    original = UserJoined.model_dump

    def counting(self, **kwargs):
        dumps.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(UserJoined, "model_dump", counting)
    async with TestClient(typed_app) as client:
        async with client.connect() as ann, client.connect() as bob, client.connect() as cat:
            await bob.request("join", {"room": "r", "user": "bob"})
            await cat.request("join", {"room": "r", "user": "cat"})
            assert await bob.receive() == ("user joined", {"user": "cat", "members": ["cat"]})
            dumps.clear()
            await ann.request("join", {"room": "r", "user": "ann"})
            for ws in (bob, cat):
                assert await ws.receive() == ("user joined", {"user": "ann", "members": ["ann"]})
            assert len(dumps) == 1  # one encoding for both recipients


@pytest.mark.parametrize("codec", [DEFAULT, STDLIB], ids=lambda c: c.name)
async def test_emit_accepts_model_instances_with_either_codec(codec):
    app = microsockets.Application(codec=codec)

    @app.on("models")
    async def models(ws):
        await ws.emit("tick", Tick(n=1, at=(2, 3)))
        await ws.emit("point", Point(1.0, 2.0))
        await ws.emit("user joined", UserJoined(user="a", members=[]))
        return [Point(0.0, 0.0)]

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("models") == [{"x": 0.0, "y": 0.0}]
        assert await ws.receive() == ("tick", {"n": 1, "at": [2, 3]})
        assert await ws.receive() == ("point", {"x": 1.0, "y": 2.0})
        assert await ws.receive() == ("user joined", {"user": "a", "members": []})
    with pytest.raises(TypeError, match="not JSON-serializable"):
        codec.dumps({"a": {1, 2}})  # only models are encoded: a set still is refused


async def test_a_before_on_hook_that_decodes_the_payload_is_validated_after_it():
    app = microsockets.Application()

    @app.hooks.before_on
    async def decode(ws, func):  # the 1.0.0 style: clients sent JSON.stringify(payload)
        if isinstance(ws.payload, str):
            ws.payload = json.loads(ws.payload)
        await func(ws)

    @app.on("add")
    async def add(ws, data: list[int]) -> int:
        return sum(data)

    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("add", "[1, 2]") == 3
        assert (await request_error(ws, "add", '["a"]')).message == "$[0]: expected int, got str"


async def test_annotations_are_read_once_at_registration():
    app = microsockets.Application()

    async def add(ws, data: list[int]) -> int:
        return sum(data)

    app.on("add")(add)
    add.__annotations__ = {"data": "NoSuchType", "return": "Nope"}  # never read again
    async with TestClient(app) as client, client.connect() as ws:
        assert await ws.request("add", [1, 2]) == 3
        assert (await request_error(ws, "add", ["a"])).code == "invalid_payload"
    assert app.router.signatures["add"].payload == list[int]


def test_registration_errors_say_what_to_do():
    app = microsockets.Application()

    async def broken(ws, data: NoSuchModel) -> None:  # noqa: F821
        pass

    with pytest.raises(TypeError, match="cannot read the annotations of the handler of 'x'"):
        app.on("x")(broken)

    async def lazy(ws: NoSuchSocket) -> None:  # noqa: F821 - an untyped handler may do this
        pass

    app.on("fine")(lazy)

    async def old_style(ws, extra=None):  # a 1.0.0 handler with an optional parameter
        return extra

    app.on("old")(old_style)
    assert app.router("old") is old_style
    assert app.router("fine") is lazy
    with pytest.raises(TypeError, match="msgspec cannot validate"):
        app.on("y")(_with_annotation(object))


def _with_annotation(annotation: Any) -> Any:
    async def handler(ws, data) -> None:
        pass

    handler.__annotations__ = {"data": annotation}
    return handler


def test_an_app_without_typed_handlers_imports_neither_library():
    script = """
import sys
import microsockets
app = microsockets.Application()
@app.on("echo")
async def echo(ws: microsockets.Socket) -> dict:
    return ws.payload
app.router("echo")
app.protocol.encode_event("x", {"a": [1]})
assert "pydantic" not in sys.modules and "msgspec" not in sys.modules, sorted(sys.modules)
print("neither")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.stdout.strip() == "neither", done.stderr


async def test_typed_handlers_over_a_real_server():
    import websockets

    async with serve(typed_app) as url, websockets.connect(url) as ws:
        await ws.send(json.dumps({"event": "move", "payload": {"x": 1}, "id": 9}))
        assert json.loads(await ws.recv()) == {
            "event": "ms:error",
            "payload": {"code": "invalid_payload", "message": "$.y: field required"},
            "id": 9,
        }
        await ws.send(json.dumps({"event": "move", "payload": {"x": 1, "y": 1}, "id": 10}))
        assert json.loads(await ws.recv())["payload"] == {"x": 2, "y": 2, "label": ""}


# The documents.


def test_asyncapi_document_lists_events_replies_and_the_librarys_frames():
    doc = typed_app.asyncapi(title="typed", version="1.2.3")
    assert (doc["asyncapi"], doc["info"]["title"], doc["info"]["version"]) == (
        "3.0.0",
        "typed",
        "1.2.3",
    )
    messages = doc["components"]["messages"]
    join = messages["join"]["payload"]["properties"]
    assert join["payload"] == {"$ref": "#/components/schemas/Join"}
    ack = messages["join.ack"]["payload"]
    assert ack["properties"]["event"] == {"const": "ms:ack"}
    assert "id" in ack["required"]
    assert ack["properties"]["payload"] == {"$ref": "#/components/schemas/Joined"}
    assert messages["add"]["payload"]["properties"]["payload"] == {
        "type": "array",
        "items": {"type": "integer"},
    }
    assert messages["plain"]["payload"]["properties"]["payload"] == {}
    assert messages["user_joined"]["name"] == "user joined"
    error = messages["ms_error"]["payload"]["properties"]["payload"]["properties"]["code"]
    assert "invalid_payload" in error["examples"]
    assert {"ms_ping", "ms_pong"} <= messages.keys()
    ops = doc["operations"]
    assert ops["receive.join"]["action"] == "receive"
    assert ops["send.user_joined"]["action"] == "send"
    schemas = doc["components"]["schemas"]
    assert {"Join", "Joined", "Move", "Point", "Paint", "Colour", "UserJoined", "Tick"} <= set(
        schemas
    )


def test_every_error_code_is_documented():
    table = (REPO / "docs" / "protocol.md").read_text()
    from microsockets.protocol import ERROR_CODES

    for code in ERROR_CODES:
        assert f"| `{code}` |" in table, code


VALIDATOR = REPO / "tools" / "asyncapi" / "validate.mjs"


def validate(tmp_path: Path, documents: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    files = []
    for name, doc in documents.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        files.append(str(path))
    done = subprocess.run(
        ["node", str(VALIDATOR), *files], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.skipif(
    not (VALIDATOR.parent / "node_modules").is_dir(), reason="run `make js` for tools/asyncapi"
)
def test_the_official_parser_validates_the_documents_offline(tmp_path):
    import example

    documents = {
        "example": example.app.asyncapi(title="chat", version="1.0.0"),
        "typed": typed_app.asyncapi(title="typed", version="1.0.0"),
    }
    broken = json.loads(json.dumps(documents["typed"]))
    del broken["info"]
    remote = json.loads(json.dumps(documents["typed"]))
    remote["components"]["schemas"]["Join"] = {"$ref": "http://example.invalid/join.json"}
    code, found = validate(tmp_path, documents)
    assert (code, found["blocked"]) == (0, []), found
    assert all(errors == [] for errors in found["documents"].values()), found
    code, found = validate(tmp_path, {"broken": broken, "remote": remote})
    errors = found["documents"]
    assert code == 1, found
    assert errors[str(tmp_path / "broken.json")], found  # the parser really checks
    assert [e["code"] for e in errors[str(tmp_path / "remote.json")]] == ["invalid-ref"]
    assert found["blocked"] == ["request http://example.invalid/join.json"]  # it tried: refused


def test_typescript_of_every_kind_of_model():
    text = typescript(typed_app, "tests.typed_app:app")
    assert "export interface Join {\n  room: string;\n  user: string;\n}" in text
    assert "export interface Move {\n  x: number;\n  y: number;\n  label?: string;\n}" in text
    assert 'export type Colour = "blue" | "red";' in text
    assert "  at: [number, number];" in text
    assert '  "add": { payload: number[]; reply: number };' in text
    assert '  "plain": { payload: unknown; reply: unknown };' in text
    assert '  "mode": "draw" | "erase" | null;' in text
    assert '  "user joined": UserJoined;' in text


def test_the_committed_events_ts_of_the_example_is_fresh():
    committed = REPO / "js-client" / "test" / "types" / "events.ts"
    done = subprocess.run(
        [sys.executable, "-m", "microsockets", "typescript", "example:app"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert done.stdout == committed.read_text(), (
        "js-client/test/types/events.ts is stale: run "
        "`python -m microsockets typescript example:app -o js-client/test/types/events.ts`"
    )


def test_the_asyncapi_command_prints_the_document():
    done = subprocess.run(
        [sys.executable, "-m", "microsockets", "asyncapi", "tests.typed_app:app", "--title", "T"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert json.loads(done.stdout) == typed_app.asyncapi(title="T", version="0.0.0")


def test_a_model_used_both_ways_has_one_schema_and_two_of_one_name_are_refused():
    app = microsockets.Application()

    @app.on("price")
    async def price(ws, data: Price) -> Price:
        return data

    app.event("price", Price)
    doc = app.asyncapi(title="t", version="1")
    assert list(doc["components"]["schemas"]) == ["Price"]

    other = microsockets.Application()
    other.event("a", Price)
    other.event("b", _other_price())
    with pytest.raises(ValueError, match="two different types are named 'Price'"):
        other.asyncapi(title="t", version="1")


class Price(BaseModel):
    amount: Decimal = Decimal(1)


def _other_price() -> type:
    class Price(BaseModel):
        cents: int

    return Price


def test_the_command_line_in_process(tmp_path, capsys):
    from microsockets.__main__ import main

    out = tmp_path / "events.ts"
    main(["typescript", "tests.typed_app:app", "-o", str(out)])
    assert out.read_text() == typescript(typed_app, "tests.typed_app:app")
    main(["asyncapi", "tests.typed_app:app", "--version", "2"])
    assert json.loads(capsys.readouterr().out)["info"] == {
        "title": "tests.typed_app",
        "version": "2",
        "description": "Events over one WebSocket, in the microsockets protocol (version 2).",
    }
    with pytest.raises(SystemExit, match="module:attribute"):
        main(["asyncapi", "tests.typed_app"])
    with pytest.raises(SystemExit, match=r"is not a microsockets\.Application"):
        main(["asyncapi", "tests.typed_app:Point"])
