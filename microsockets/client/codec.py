"""Frames from the server: the server's own sans-I/O Protocol, plus the offset `"o"` that
logged frames carry (docs/protocol.md), so both ends read tests/wire_vectors.json alike."""

from __future__ import annotations

from typing import NamedTuple

from ..protocol import Frame, Protocol
from ..types import JSON

__all__ = ["ServerFrame", "decode", "encode"]

PROTOCOL = Protocol(max_message_size=2**62)
"""The server decides what it sends; the transport's `max_size` bounds a frame."""


class ServerFrame(NamedTuple):
    """One decoded server frame; `offset` is the log offset of a frame sent to rooms."""

    event: str
    payload: JSON
    id: int | None = None
    offset: str | None = None


def decode(text: str) -> ServerFrame:
    """Parse one frame (ProtocolError when it breaks the protocol) and its offset, if any."""
    frame: Frame = PROTOCOL.decode(text)
    offset = None
    if '"o"' in text:  # only logged frames: a second parse, not one per frame
        value = PROTOCOL.codec.loads(text)
        if isinstance(value, dict) and isinstance(value.get("o"), str):
            offset = value["o"]
    return ServerFrame(frame.event, frame.payload, frame.id, offset)


def encode(event: str, payload: JSON = "", ack_id: int | None = None) -> str:
    """One client frame, keys in the order event, payload, id."""
    return PROTOCOL.encode(event, payload, ack_id)
