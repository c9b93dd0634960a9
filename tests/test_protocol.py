"""The sans-I/O protocol alone, against the golden vectors shared with the JS client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microsockets import codec
from microsockets.exceptions import ProtocolError
from microsockets.protocol import ACK, ERROR, MAX_ID, PONG, Frame, Protocol, check_event_name

VECTORS = json.loads((Path(__file__).parent / "wire_vectors.json").read_text("utf-8"))
CODECS = [codec.STDLIB, codec.DEFAULT]


def build(vector: dict) -> str:
    if "parts" in vector:
        return "".join(text * times for text, times in vector["parts"])
    return vector["frame"]


@pytest.fixture(params=CODECS, ids=lambda c: c.name)
def protocol(request: pytest.FixtureRequest) -> Protocol:
    return Protocol(codec=request.param, max_message_size=1024 * 1024)  # room for the vectors


@pytest.mark.parametrize("vector", VECTORS["messages"], ids=lambda v: v["name"])
def test_messages_encode_to_the_exact_frame(protocol, vector):
    assert protocol.encode(vector["event"], vector["payload"], vector["id"]) == vector["frame"]


@pytest.mark.parametrize(
    "vector", VECTORS["messages"] + VECTORS["decode_only"], ids=lambda v: v["name"]
)
def test_frames_decode(protocol, vector):
    assert protocol.decode(vector["frame"]) == Frame(
        vector["event"], vector["payload"], vector["id"]
    )


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_frames_give_their_error_code(protocol, vector):
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(build(vector))
    assert caught.value.code == vector["code"]
    assert caught.value.close_code is None


@pytest.mark.parametrize("vector", VECTORS["replies"], ids=lambda v: v["name"])
def test_replies_encode_to_the_exact_frame(protocol, vector):
    if vector["kind"] == "error":
        frame = protocol.encode_error(vector["code"], vector["message"], vector["id"])
    else:
        event = {"ack": ACK, "pong": PONG}[vector["kind"]]
        frame = protocol.encode(event, vector["payload"], vector["id"])
    assert frame == vector["frame"]
    assert protocol.decode(frame).event in (ACK, ERROR, PONG)


def test_vector_limits_match_the_defaults():
    assert Protocol().max_event_length == VECTORS["limits"]["max_event_length"]
    assert VECTORS["limits"]["max_id"] == MAX_ID


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 2 * 1024 * 1024])
def test_oversized_text_closes_with_1009(protocol, size):
    with pytest.raises(ProtocolError) as caught:
        protocol.decode('{"event":"e","payload":"' + "x" * size + '"}')
    assert (caught.value.code, caught.value.close_code) == ("message_too_big", 1009)


def test_size_counts_utf8_bytes_not_characters():
    small = Protocol(max_message_size=100)
    text = '{"event":"e","payload":"' + "\u20ac" * 30 + '"}'  # 26 + 90 bytes, 56 characters
    with pytest.raises(ProtocolError) as caught:
        small.decode(text)
    assert caught.value.close_code == 1009
    assert small.decode('{"event":"e","payload":"' + "\u20ac" * 20 + '"}').event == "e"


def test_binary_frames_get_an_error_or_1009_when_oversized(protocol):
    assert protocol.binary_error(b"abc").code == "binary_frame"
    assert protocol.binary_error(b"x" * (1024 * 1024 + 1)).close_code == 1009


def test_event_length_limit_is_configurable():
    assert Protocol(max_event_length=3).decode('{"event":"abc"}').event == "abc"
    with pytest.raises(ProtocolError):
        Protocol(max_event_length=3).decode('{"event":"abcd"}')


@pytest.mark.parametrize("name", ["", "ms:ack", "ms:anything", 5, None])
def test_reserved_and_empty_event_names_are_refused(name):
    with pytest.raises(ValueError, match="event"):
        check_event_name(name)


@pytest.mark.parametrize("c", CODECS, ids=lambda c: c.name)
def test_codecs_refuse_what_json_cannot_hold(c):
    with pytest.raises(TypeError, match="JSON-serializable"):
        c.dumps({"when": object()})


def test_stdlib_codec_refuses_nan_on_encode():
    with pytest.raises(TypeError, match="JSON-serializable"):
        codec.STDLIB.dumps(float("nan"))


def test_codecs_write_non_string_keys_alike():
    assert {c.dumps({1: 2}) for c in CODECS} == {'{"1":2}'}


RECOVERY = VECTORS["recovery"]


@pytest.mark.parametrize("vector", RECOVERY["logged"], ids=lambda v: v["name"])
def test_logged_frames_carry_their_offset(protocol, vector):
    from microsockets.recovery import with_offset

    frame = protocol.encode_event(vector["event"], vector["payload"])
    assert frame == vector["frame"]
    assert with_offset(frame, vector["offset"]) == vector["logged"]


@pytest.mark.parametrize("vector", RECOVERY["session"], ids=lambda v: v["name"])
def test_the_session_frame(protocol, vector):
    from microsockets.protocol import SESSION

    assert protocol.encode(SESSION, vector["payload"]) == vector["frame"]


def test_recovery_close_codes():
    from microsockets.codes import REFUSED, SESSION_RESUMED

    for refusal in RECOVERY["refusals"]:
        assert REFUSED + refusal["status"] == refusal["close_code"]
    assert RECOVERY["session_resumed_close_code"] == SESSION_RESUMED
