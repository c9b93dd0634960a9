"""The wire format of docs/protocol.md, sans I/O: text in, validated frames out, and back.

Nothing here touches a socket or an event loop, so every rule is tested alone
(tests/test_protocol.py, with the golden vectors in tests/wire_vectors.json).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import NamedTuple

from .codec import DEFAULT, Codec
from .exceptions import ProtocolError
from .types import JSON

__all__ = [
    "ACK",
    "ERROR",
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
SESSION = "ms:session"
"""The first frame to a client that sent `ms_v=2`: its id, resume token, and whether it resumed."""
MAX_ID = 2**53 - 1
"""The largest acknowledgement id: the largest integer a JavaScript number holds exactly."""

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


def target_rooms(to: str | Iterable[str] | None) -> Collection[str] | None:
    """`to=` as given by users: None (everyone), one room name, or several."""
    if to is None or isinstance(to, (tuple, list, set, frozenset)):
        return to
    if isinstance(to, str):
        return (to,)
    return tuple(to)


class Protocol:
    """Decodes client frames and encodes server frames under the given limits."""

    __slots__ = ("_dumps", "_loads", "codec", "max_event_length", "max_message_size")

    def __init__(
        self,
        *,
        max_message_size: int = 1024 * 1024,
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
        except ValueError as exc:
            raise ProtocolError("invalid_json", f"frame is not valid JSON: {exc}") from None
        if type(data) is not dict:
            raise ProtocolError(
                "invalid_frame", 'a frame is a JSON object: {"event": ..., "payload": ...}'
            )
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
