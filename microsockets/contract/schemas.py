"""The JSON Schemas of an app's events, gathered once for the AsyncAPI document and TypeScript."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from ..events import EventRouter
from ..paths import PathPattern
from ..types import JSON
from .models import schema_of

__all__ = ["ClientEvent", "Contract", "Schemas", "schemas"]


class Contract(Protocol):
    """What the contract reads of an application: its handlers, its declared events, its path."""

    @property
    def router(self) -> EventRouter: ...

    @property
    def events(self) -> Mapping[str, Any]: ...

    @property
    def path(self) -> PathPattern | None: ...


class ClientEvent(NamedTuple):
    """An event the client sends: its payload's and its reply's schemas, and what it does."""

    payload: JSON
    reply: JSON
    summary: str


class Schemas(NamedTuple):
    """Every event of an app, each way, and the named schemas (models) their schemas refer to."""

    client: dict[str, ClientEvent]
    server: dict[str, JSON]
    components: dict[str, JSON]


def schemas(app: Contract) -> Schemas:
    """The schemas of the events `app` handles (in the order routed) and declares it sends."""
    components: dict[str, JSON] = {}

    def schema(annotation: Any, where: str) -> JSON:
        found, named = schema_of(annotation, where)
        for name, value in named.items():
            if components.setdefault(name, value) != value:
                raise ValueError(
                    f"two different types are named {name!r} ({where}); rename one of them"
                )
        return found

    client = {}
    for event, signature in app.router.signatures.items():
        where = f"the handler of {event!r}"
        handler = app.router(event)
        doc = (getattr(handler, "__doc__", None) or "").strip()
        client[event] = ClientEvent(
            schema(signature.payload, where),
            schema(signature.reply, where + " (its return type)"),
            doc.splitlines()[0] if doc else "",
        )
    server = {
        event: schema(annotation, f"app.event({event!r})")
        for event, annotation in app.events.items()
    }
    return Schemas(client, server, dict(sorted(components.items())))
