"""The log lines about one connection: its id and client address, in the text and as fields.

Every line the library writes about a connection starts with "connection ID from HOST:PORT"
and carries `connection_id` and `client` as record attributes, for JSON formatters
(docs/observability.md has the logger names and a recipe).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol


class Peer(Protocol):
    """What a log line needs of a connection."""

    id: str

    @property
    def client(self) -> tuple[str, int] | None: ...


def address(client: tuple[str, int] | None) -> str:
    """ "host:port" of a client, or "unknown" when the server did not say."""
    return "unknown" if client is None else f"{client[0]}:{client[1]}"


logger = logging.getLogger("microsockets")
"""The library's logger; below it, "microsockets.rooms.cluster" and "microsockets.rooms.redis"."""


def log(conn: Peer, level: int, message: str, *args: object, exc_info: Any = None) -> None:
    """Log `message % args` about `conn` on "microsockets", prefixed with its id and address."""
    if logger.isEnabledFor(level):
        client = address(conn.client)
        logger.log(
            level,
            "connection %s from %s: " + message,
            conn.id,
            client,
            *args,
            exc_info=exc_info,
            extra={"connection_id": conn.id, "client": client},
        )
