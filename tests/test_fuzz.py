"""Fuzzing: the decoder alone under hypothesis, then a live fuzz against a real uvicorn.

Offline: whatever text arrives, `Protocol.decode` returns a valid Frame or raises
ProtocolError with a documented code, with either codec; encode/decode round-trips.
Live: fuzzing clients send thousands of hostile frames while honest clients in the same room
exchange numbered messages; the server stays up, honest clients lose nothing and see
nothing out of order, and every fuzzing client gets exactly the documented replies and
close codes.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microsockets
from microsockets.codec import DEFAULT, STDLIB, Codec
from microsockets.protocol import MAX_ID, Frame, Protocol

from .conftest import serve
from .helpers_ws import BINARY, CLOSE, TEXT, RawClient, close_frame, frame
from .test_faults import WAIT, make_app, request, wait_until

CODECS = [pytest.param(STDLIB, id="stdlib"), pytest.param(DEFAULT, id=DEFAULT.name)]
DECODE_ERRORS = {"invalid_json", "invalid_frame", "message_too_big"}
"""The codes docs/protocol.md gives for frames refused by the decoder."""

FUZZ = settings(
    max_examples=int(os.environ.get("MS_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Strategies.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
event_names = st.text(min_size=1, max_size=40)
ack_ids = st.none() | st.integers(min_value=1, max_value=MAX_ID)

# Pieces of hostile JSON, glued together at random: most results are broken documents,
# some are almost frames, a few are frames.
fragments = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        '"event"',
        '"payload"',
        '"id"',
        '"e"',
        '"ms:ping"',
        "NaN",
        "-Infinity",
        "Infinity",
        "1e999",
        "-1e400",
        "9" * 400,
        "9" * 5000,
        "0",
        "-0",
        "1.5",
        "true",
        "null",
        '"\\ud800"',
        '"\\udc00\\ud800"',
        '"\\ud83d\\ude00"',
        '"\\u0000"',
        "\x00",
        "\u2028",
        '"\\x"',
        " ",
        "\n",
        "[" * 2000,
        "]" * 2000,
        '{"a":' * 1100,
        "}" * 1100,
        "2" * 30,
        "1e308",
        "-",
        ".",
        "e",
        '"' + "x" * 300 + '"',
    ]
)
hostile_text = st.lists(fragments | st.text(max_size=5), max_size=30).map("".join)


def frame_like(draw_event: Any, draw_payload: Any, draw_id: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"event": draw_event, "payload": draw_payload}
    if draw_id is not None:
        document["id"] = draw_id
    return document


almost_frames = st.builds(
    frame_like,
    st.one_of(event_names, st.just(""), st.text(min_size=257, max_size=300), json_scalars),
    json_values,
    st.one_of(
        ack_ids,
        st.just(0),
        st.just(-1),
        st.just(True),
        st.just(1.0),
        st.just("7"),
        st.just(MAX_ID + 1),
    ),
).map(json.dumps)


def decode(protocol: Protocol, text: str) -> Frame | microsockets.ProtocolError:
    try:
        return protocol.decode(text)
    except microsockets.ProtocolError as exc:
        return exc


def check_decode(protocol: Protocol, text: str) -> None:
    """The property: a valid Frame, or ProtocolError with a documented code; nothing else."""
    result = decode(protocol, text)
    if isinstance(result, microsockets.ProtocolError):
        assert result.code in DECODE_ERRORS, result.code
        assert result.message
        assert (result.close_code == 1009) == (result.code == "message_too_big")
        return
    assert isinstance(result, Frame)
    assert type(result.event) is str
    assert 0 < len(result.event) <= protocol.max_event_length
    assert result.id is None or (type(result.id) is int and 0 < result.id <= MAX_ID)
    protocol.codec.dumps(result.payload)  # whatever was accepted can be sent back


# The decoder alone.


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(text=st.text(max_size=200))
def test_decode_any_text(codec: Codec, text: str):
    check_decode(Protocol(codec=codec), text)


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(text=hostile_text)
def test_decode_hostile_json(codec: Codec, text: str):
    check_decode(Protocol(codec=codec), text)


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(text=almost_frames)
def test_decode_almost_frames(codec: Codec, text: str):
    check_decode(Protocol(codec=codec), text)


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(data=st.binary(max_size=300))
def test_decode_any_utf8_bytes(codec: Codec, data: bytes):
    """Bytes off the wire: invalid UTF-8 never reaches the decoder (the server closes 1007)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    check_decode(Protocol(codec=codec), text)


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(data=st.binary(max_size=2000), limit=st.integers(min_value=0, max_value=1000))
def test_binary_frames_get_binary_frame_or_too_big(codec: Codec, data: bytes, limit: int):
    error = Protocol(codec=codec, max_message_size=limit).binary_error(data)
    assert error.code == ("message_too_big" if len(data) > limit else "binary_frame")


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(text=hostile_text | st.text(max_size=300), limit=st.integers(min_value=0, max_value=300))
def test_size_limit_is_in_utf8_bytes(codec: Codec, text: str, limit: int):
    protocol = Protocol(codec=codec, max_message_size=limit)
    result = decode(protocol, text)
    too_big = len(text.encode()) > limit
    assert (getattr(result, "code", None) == "message_too_big") == too_big


@pytest.mark.parametrize("codec", CODECS)
@FUZZ
@given(event=event_names, payload=json_values, ack_id=ack_ids)
def test_encode_decode_round_trip(codec: Codec, event: str, payload: Any, ack_id: int | None):
    protocol = Protocol(codec=codec)
    decoded = protocol.decode(protocol.encode(event, payload, ack_id))
    assert decoded == Frame(event, payload, ack_id)
    assert codec.dumps(decoded.payload) == codec.dumps(payload)


@FUZZ
@given(event=event_names, payload=json_values, ack_id=ack_ids)
def test_both_codecs_write_frames_the_other_reads(event: str, payload: Any, ack_id: int | None):
    """Same bytes except float spelling (orjson writes 1.5e-05 as 0.000015): same values."""
    stdlib, fast = Protocol(codec=STDLIB), Protocol(codec=DEFAULT)
    written = stdlib.encode(event, payload, ack_id), fast.encode(event, payload, ack_id)
    for text in written:
        for reader in (stdlib, fast):
            assert reader.decode(text) == Frame(event, payload, ack_id)
    if not has_float(payload):
        assert written[0] == written[1]


def has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    return isinstance(value, list) and any(has_float(v) for v in value)


def _verdict(codec: Codec, text: str) -> str:
    try:
        codec.loads(text)
    except ValueError:
        return "refused"
    return "accepted"


@FUZZ
@given(text=hostile_text | almost_frames)
def test_both_codecs_accept_and_refuse_the_same_documents(text: str):
    """As microsockets/codec.py promises (except nesting near the stdlib's recursion limit)."""
    if text.count("[") + text.count("{") > 500:
        return  # the stdlib's depth limit depends on the stack; both refuse 100,000 deep
    assert _verdict(STDLIB, text) == _verdict(DEFAULT, text), text[:200]


def test_numbers_past_a_double_are_refused_by_both_codecs():
    for text in ("9" * 309, "-" + "9" * 309, "9" * 5000, "1" + "0" * 309 + ".0", "1e309"):
        for codec in (STDLIB, DEFAULT):
            with pytest.raises(ValueError, match=r"too large|infinity"):
                codec.loads(text)
    largest = str(int(1.7976931348623157e308))
    for codec in (STDLIB, DEFAULT):
        assert math.isfinite(float(codec.loads(largest)))


# Live fuzz.

MAX_BAD = 10  # the default max_bad_frames
LIMIT = 64 * 1024


class Plan:
    """What one fuzzing connection sends, and exactly what it must get back."""

    def __init__(self, rng: random.Random, protocol: Protocol) -> None:
        self.rng = rng
        self.protocol = protocol
        self.frames: list[bytes] = []
        self.replies: list[str] = []  # "pong" or an error code, in order
        self.close: int = 1000
        self.partial = False  # uvicorn's own 1007 may overtake the last replies
        self._run = 0

    def hostile(self) -> tuple[int, bytes, str]:
        """(opcode, data, expected reply) for one random non-terminal bad frame."""
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 300))
            return BINARY, data, "binary_frame"
        if kind == 1:
            text = "".join(
                chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF)]))
                for _ in range(rng.randrange(0, 200))
            )
        elif kind == 2:
            text = (
                '{"event":"x","payload":' + rng.choice(["9" * 5000, "1e999", "NaN", "-1e400"]) + "}"
            )
        elif kind == 3:
            text = json.dumps({"event": "e" * rng.randrange(257, 5000), "payload": 1})
        elif kind == 4:
            depth = rng.randrange(1100, 20_000)
            text = '{"event":"x","payload":' + "[" * depth + "]" * depth + "}"
        elif kind == 5:
            text = json.dumps({"event": f"fuzz-{rng.random()}", "payload": rng.random()})
        elif kind == 6:
            text = rng.choice(
                [
                    '{"event":""}',
                    "[]",
                    "null",
                    '"join"',
                    '{"payload":1}',
                    '{"event":"x","id":0}',
                    '{"event":"x","id":true}',
                ]
            )
        elif kind == 7:
            text = json.dumps({"event": "x", "payload": "\ud800"}, ensure_ascii=True)
        else:
            text = '{"event":"x","payload":"' + rng.choice(["\\x", "\\ud800", "\\", "\x01"]) + '"}'
        try:
            self.protocol.decode(text)
        except microsockets.ProtocolError as exc:
            return TEXT, text.encode(), exc.code
        return TEXT, text.encode(), "unknown_event"  # decodes: no such handler

    def add(self, opcode: int, data: bytes, reply: str, bad: bool = True) -> None:
        self.frames.append(frame(opcode, data))
        self.replies.append(reply)
        self._run = self._run + 1 if bad else 0

    def build(self) -> Plan:
        rng = self.rng
        for _ in range(rng.randrange(5, 80)):
            if self._run == MAX_BAD - 1:  # a good frame resets the count
                self.add(TEXT, b'{"event":"ms:ping","payload":1}', "pong", bad=False)
            self.add(*self.hostile())
        ending = rng.choice(["normal", "utf8", "text too big", "binary too big", "bad run"])
        if ending == "utf8":
            self.frames.append(frame(TEXT, b'{"event":"x","payload":"\xc3\x28"}'))
            self.close, self.partial = 1007, True
        elif ending == "text too big":
            self.frames.append(frame(TEXT, b'{"event":"x","payload":"' + b"a" * LIMIT + b'"}'))
            self.close = 1009
        elif ending == "binary too big":
            self.frames.append(frame(BINARY, rng.randbytes(LIMIT + 1)))
            self.close = 1009
        elif ending == "bad run":
            while self._run < MAX_BAD:
                self.add(*self.hostile())
            self.close = 1008
        return self  # "normal": the client closes once it has all its replies


async def fuzz_connection(url: str, plan: Plan) -> tuple[list[str], int | None]:
    """Send the plan's frames while reading; the replies and the close code received.

    A plan that ends normally closes once it has read all its replies, as a client that
    waits for its answers would.
    """
    raw = await RawClient.connect(url)
    try:
        sender = asyncio.create_task(_send_all(raw, plan.frames))
        replies: list[str] = []
        code: int | None = None
        for _ in range(len(plan.replies) + 10):
            try:
                opcode, data = await asyncio.wait_for(raw.read_frame(), WAIT)
            except (ConnectionError, OSError):
                break
            if opcode == CLOSE:
                code = int.from_bytes(data[:2], "big") if data else 1005
                break
            reply = json.loads(data)
            replies.append("pong" if reply["event"] == "ms:pong" else reply["payload"]["code"])
            if plan.close == 1000 and len(replies) == len(plan.replies):
                await sender
                await raw.send(close_frame(1000))
        await sender
    finally:
        raw.close()
    return replies, code


async def _send_all(raw: RawClient, frames: list[bytes]) -> None:
    for data in frames:
        try:
            await raw.send(data)
        except OSError:
            return
        await asyncio.sleep(0)


async def honest_client(url: str, me: int, peers: int, minimum: int) -> dict[int, list[int]]:
    """Join the lobby, publish numbered messages for as long as the fuzzing lasts (at least
    `minimum`), then an end marker; receive everyone's until every peer's marker came."""
    seen: dict[int, list[int]] = {peer: [] for peer in range(peers)}
    ended: dict[int, int] = {}
    async with websockets.connect(url, max_queue=None) as ws:
        assert (await request(ws, "join", "lobby"))["payload"] == "joined"
        await ready.wait()

        async def publish() -> None:
            n = 0
            for n in range(1_000_000):
                if n >= minimum and fuzz_done.is_set():
                    break
                await ws.send(json.dumps({"event": "say", "payload": {"from": me, "n": n}}))
                if n % 10 == 0:
                    await asyncio.sleep(0.002)
            await ws.send(json.dumps({"event": "say", "payload": {"from": me, "end": n}}))

        publisher = asyncio.create_task(publish())
        for _ in range(10_000_000):
            if len(ended) == peers:
                break
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
            assert message["event"] == "said", message
            payload = message["payload"]
            if "end" in payload:
                ended[payload["from"]] = payload["end"]
            else:
                seen[payload["from"]].append(payload["n"])
        await publisher
    return {peer: seen[peer] == list(range(ended[peer])) and ended[peer] for peer in seen}


ready = asyncio.Event()
fuzz_done = asyncio.Event()


async def live_fuzz(seed: int, fuzzers: int, connections: int, honest: int, count: int) -> None:
    global ready, fuzz_done
    ready, fuzz_done = asyncio.Event(), asyncio.Event()
    app = make_app(max_message_size=LIMIT)
    protocol = app.protocol
    rng = random.Random(seed)
    plans = [
        Plan(random.Random(rng.random()), protocol).build() for _ in range(fuzzers * connections)
    ]
    frames_sent = sum(len(plan.frames) for plan in plans)
    async with serve(app, ws_max_size=LIMIT * 2) as url:
        honest_tasks = [
            asyncio.create_task(honest_client(url, me, honest, count)) for me in range(honest)
        ]
        await wait_until(lambda: app.room_manager.index.room_size("lobby") == honest)
        ready.set()

        async def fuzzer(index: int) -> list[tuple[Plan, list[str], int | None]]:
            results = []
            for plan in plans[index::fuzzers]:
                results.append((plan, *await fuzz_connection(url, plan)))
            return results

        outcomes = [
            r for batch in await asyncio.gather(*(fuzzer(i) for i in range(fuzzers))) for r in batch
        ]
        fuzz_done.set()
        views = await asyncio.gather(*honest_tasks)
        # Each honest client saw every honest sender's messages 0..end-1, in order, none lost.
        assert all(all(view.values()) for view in views), views
        assert views[0] == views[-1]
        published = sum(views[0].values())
        for plan, replies, code in outcomes:
            assert code == plan.close, (plan.close, code, replies[-3:])
            if plan.partial:
                assert replies == plan.replies[: len(replies)]
            else:
                assert replies == plan.replies
        async with websockets.connect(url) as ws:  # still serving
            assert (await request(ws, "echo", "alive"))["payload"] == "alive"
        await wait_until(lambda: not app.connections)
        assert app.connections == {}
        assert await app.room_manager.members("lobby") == set()
    endings: dict[int, int] = {}
    for plan in plans:
        endings[plan.close] = endings.get(plan.close, 0) + 1
    print(
        f"\nlive fuzz seed={seed}: {len(plans)} fuzzing connections sent {frames_sent} frames "
        f"(closes {dict(sorted(endings.items()))}); {honest} honest clients published "
        f"{published} messages meanwhile, all delivered in order"
    )


async def test_live_fuzz():
    seed = int(os.environ.get("MS_FUZZ_SEED", random.randrange(2**32)))
    await live_fuzz(seed, fuzzers=8, connections=16, honest=3, count=200)


@pytest.mark.slow
async def test_live_fuzz_long():
    seed = int(os.environ.get("MS_FUZZ_SEED", random.randrange(2**32)))
    await live_fuzz(seed, fuzzers=16, connections=24, honest=4, count=1000)
