"""An app's AsyncAPI 3.0 document: the frames of docs/protocol.md, typed by its handlers.

Each message is a whole frame (`{"event": ..., "payload": ..., "id": ...}`), so the document
describes exactly what crosses the wire. Operations are written from the server's side:
`receive` for what clients send, `send` for what the app emits.
"""

from __future__ import annotations

import re

from ..protocol import ACK, ERROR, ERROR_CODES, MAX_ID, PING, PONG
from ..types import JSON
from .schemas import Contract, schemas

__all__ = ["document"]

CHANNEL = "events"
_ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
_ERROR_PAYLOAD = {
    "type": "object",
    "properties": {
        "code": {
            "type": "string",
            "examples": list(ERROR_CODES),
            "description": "one of the library's codes, or that of a LimitExceeded the app raised",
        },
        "message": {"type": "string", "description": "for people; it may change"},
    },
    "required": ["code", "message"],
}


def document(app: Contract, *, title: str, version: str) -> dict[str, JSON]:
    """The AsyncAPI 3.0 document of `app`, as JSON builtins."""
    found = schemas(app)
    keys = _Keys()
    messages: dict[str, JSON] = {}
    operations: dict[str, JSON] = {}

    def message(key: str, name: str, title: str, frame: JSON, summary: str = "") -> JSON:
        messages[key] = {"name": name, "title": title, "payload": frame}
        if summary:
            messages[key]["summary"] = summary
        return {"$ref": f"#/channels/{CHANNEL}/messages/{key}"}

    channel = {"$ref": f"#/channels/{CHANNEL}"}
    error = message(keys.new(ERROR), ERROR, "error reply", _frame(ERROR, _ERROR_PAYLOAD, "maybe"))
    for event, spec in found.client.items():
        key = keys.new(event)
        sent = message(key, event, event, _frame(event, spec.payload, "maybe", False), spec.summary)
        ack = message(keys.new(f"{event}.ack"), ACK, f"{event} ack", _frame(ACK, spec.reply, "yes"))
        operations[keys.new(f"receive.{event}")] = {
            "action": "receive",
            "channel": channel,
            "messages": [sent],
            "reply": {"channel": channel, "messages": [ack, error]},
        }
    for event, payload in found.server.items():
        sent = message(keys.new(event), event, event, _frame(event, payload, "no"))
        operations[keys.new(f"send.{event}")] = {
            "action": "send",
            "channel": channel,
            "messages": [sent],
        }
    ping = message(keys.new(PING), PING, "heartbeat", _frame(PING, {}, "no", False))
    pong = message(keys.new(PONG), PONG, "heartbeat answer", _frame(PONG, {}, "no"))
    operations[keys.new(f"receive.{PING}")] = {
        "action": "receive",
        "channel": channel,
        "summary": "the server answers ms:pong, echoing the payload",
        "messages": [ping],
        "reply": {"channel": channel, "messages": [pong]},
    }
    operations[keys.new(f"send.{ERROR}")] = {
        "action": "send",
        "channel": channel,
        "summary": "the answer to a frame refused without a usable id (bad JSON, say)",
        "messages": [error],
    }
    address = "/" if app.path is None else app.path.pattern
    events: dict[str, JSON] = {
        "address": address,
        "title": "event connection",
        "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in messages},
    }
    names = re.findall(r"\{(\w+)\}", address)
    if names:
        events["parameters"] = {name: {"description": "a path segment"} for name in names}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Events over one WebSocket, in the microsockets protocol (version 2).",
        },
        "defaultContentType": "application/json",
        "channels": {CHANNEL: events},
        "operations": operations,
        "components": {"messages": messages, "schemas": found.components},
    }


def _frame(event: str, payload: JSON, ack_id: str, required: bool = True) -> JSON:
    """The schema of a frame of `event`; `ack_id` "yes", "no" or "maybe" carries an `id`.

    Clients may leave the payload out (it is then ""): `required=False`.
    """
    properties: dict[str, JSON] = {"event": {"const": event}, "payload": payload}
    if ack_id != "no":
        properties["id"] = _ID
    needed = ["event", "payload"] if required else ["event"]
    if ack_id == "yes":
        needed.append("id")
    return {"type": "object", "properties": properties, "required": needed}


class _Keys:
    """Component keys (letters, digits, `.`, `-`, `_`) for event names, each used once."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def new(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"
        key, n = base, 1
        while key in self._used:
            n += 1
            key = f"{base}_{n}"
        self._used.add(key)
        return key
