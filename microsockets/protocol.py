"""The wire format of docs/protocol.md, sans I/O: text in, validated frames out, and back.

Nothing here touches a socket or an event loop, so every rule is tested alone
(tests/test_protocol.py, with the golden vectors in tests/wire_vectors.json).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

from .codec import DEFAULT, Codec
from .exceptions import LimitExceeded, ProtocolError
from .types import JSON

__all__ = [
    "ACK",
    "ERROR",
    "ERROR_CODES",
    "MAX_DEPTH",
    "MAX_ID",
    "PING",
    "PONG",
    "RESERVED_PREFIX",
    "SESSION",
    "Frame",
    "Protocol",
    "check_event_name",
    "target_rooms",
]

RESERVED_PREFIX = "ms:"
ACK = "ms:ack"
ERROR = "ms:error"
PING = "ms:ping"
PONG = "ms:pong"
ERROR_CODES = (
    "invalid_json",
    "invalid_frame",
    "binary_frame",
    "unknown_event",
    "invalid_payload",
    "handler_error",
    "handler_timeout",
    "too_many_rooms",
    "room_name_too_long",
    "too_many_targets",
    "rate_limited",
    "presence_too_large",
)
"""The codes of `ms:error` replies (docs/protocol.md); a LimitExceeded may bring its own."""
PRESENCE = "ms:presence"
"""The diff frame: `{"room", "joins": {id: meta}, "leaves": {id: meta}}`, or `{"room", "count"}`."""
PRESENCE_STATE = "ms:presence_state"
"""The full state a watcher gets first: `{"room", "joins": {every id: meta}, "leaves": {}}`."""
SESSION = "ms:session"
"""The first frame to a client that sent `ms_v=2`: its id, resume token, and whether it resumed."""
MAX_ID = 2**53 - 1
"""The largest acknowledgement id: the largest integer a JavaScript number holds exactly."""

MAX_DEPTH = 128
"""The deepest nesting of a frame, its own object included, for every codec: the payload
keeps 126 levels of headroom below orjson's encoder limit (254) when a handler wraps it."""

_DEEP = 2 * MAX_DEPTH
"""Frames shorter than this cannot nest past MAX_DEPTH: they skip the depth check."""


CLOSE_TOO_BIG = 1009


class Frame(NamedTuple):
    """One decoded frame: an event, its payload and the acknowledgement id, if any."""

    event: str
    payload: JSON
    id: int | None = None


_new_tuple = tuple.__new__


def check_event_name(event: str) -> None:
    """Refuse names the application may not use: empty, non-string or reserved ones."""
    if not isinstance(event, str) or not event:
        raise ValueError(f"an event name is a non-empty string, not {event!r}")
    if event.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"event names starting with {RESERVED_PREFIX!r} are reserved for microsockets; "
            f"rename {event!r}"
        )


def target_rooms(
    to: str | Iterable[str] | None, limit: int | None = None
) -> Collection[str] | None:
    """`to=` as given by users: None (everyone), one room name, or at most `limit` of them.

    Raises LimitExceeded past `limit` (max_broadcast_rooms): each target costs every node a
    lookup, and Redis the name, for every broadcast.
    """
    if isinstance(to, str):
        return (to,)
    if to is None:
        return None
    rooms = to if isinstance(to, (tuple, list, set, frozenset)) else tuple(to)
    if limit is not None and len(rooms) > limit:
        raise LimitExceeded(
            "too_many_targets",
            f"a broadcast may name at most {limit} rooms (max_broadcast_rooms)",
        )
    return rooms


def _too_deep(document: dict[str, JSON]) -> bool:
    """Whether a decoded frame nests objects and arrays more than MAX_DEPTH levels deep."""
    stack: list[tuple[JSON, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in value.values() if type(value) is dict else value:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


class Protocol:
    """Decodes client frames and encodes server frames under the given limits."""

    __slots__ = ("_dumps", "_loads", "codec", "max_event_length", "max_message_size")

    def __init__(
        self,
        *,
        max_message_size: int = 64 * 1024,
        max_event_length: int = 256,
        codec: Codec = DEFAULT,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_event_length = max_event_length
        self.codec = codec
        self._loads = codec.loads
        self._dumps = codec.dumps

    def decode(self, text: str) -> Frame:
        """Parse one text frame; raise ProtocolError saying what is wrong with it."""
        size = len(text)
        limit = self.max_message_size
        if size > limit or (size * 4 > limit and len(text.encode("utf-8", "replace")) > limit):
            raise ProtocolError(
                "message_too_big",
                f"message of more than {limit} bytes; the limit is max_message_size",
                close_code=CLOSE_TOO_BIG,
            )
        try:
            data = self._loads(text)
        except ValueError:
            raise ProtocolError("invalid_json", "frame is not valid JSON") from None
        if type(data) is not dict:
            raise ProtocolError("invalid_frame", 'a frame is {"event": ..., "payload": ...}')
        if size > _DEEP and text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(data):
            raise ProtocolError("invalid_json", f"frame nested deeper than {MAX_DEPTH} levels")
        ack_id = data.get("id")
        valid_id = ack_id if type(ack_id) is int and 0 < ack_id <= MAX_ID else None
        event = data.get("event")
        if type(event) is not str or not event:
            raise ProtocolError(
                "invalid_frame", '"event" must be a non-empty string', ack_id=valid_id
            )
        if len(event) > self.max_event_length:
            raise ProtocolError(
                "invalid_frame",
                f'"event" is longer than {self.max_event_length} characters',
                ack_id=valid_id,
            )
        if ack_id is not None and valid_id is None:
            raise ProtocolError("invalid_frame", f'"id" must be an integer from 1 to {MAX_ID}')
        # tuple.__new__ skips NamedTuple's Python-level __new__: 0.14 us of every frame.
        return _new_tuple(Frame, (event, data.get("payload", ""), ack_id))

    def binary_error(self, data: bytes) -> ProtocolError:
        """The error a binary frame gets on an event connection (or 1009 if oversized)."""
        if len(data) > self.max_message_size:
            return ProtocolError(
                "message_too_big",
                f"message of more than {self.max_message_size} bytes",
                close_code=CLOSE_TOO_BIG,
            )
        return ProtocolError("binary_frame", "send events as text frames holding JSON")

    def encode(self, event: str, payload: JSON = "", ack_id: int | None = None) -> str:
        """One frame, either way: an event, an ack (`ACK`), a pong (`PONG`) or a client request.

        Raises TypeError if the payload is not JSON-serializable.
        """
        if ack_id is None:
            return self._dumps({"event": event, "payload": payload})
        return self._dumps({"event": event, "payload": payload, "id": ack_id})

    def encode_event(self, event: str, payload: JSON = "") -> str:
        """An application's event: `encode` after refusing empty or reserved names (ValueError)."""
        if type(event) is not str or not event or event.startswith(RESERVED_PREFIX):
            check_event_name(event)  # raises, saying what is wrong
        return self._dumps({"event": event, "payload": payload})

    def encode_error(self, code: str, message: str, ack_id: int | None = None) -> str:
        """An error reply; it carries the id of the failed frame when it had one."""
        return self.encode(ERROR, {"code": code, "message": message}, ack_id)
