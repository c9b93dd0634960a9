"""Until the server side of session recovery (issue 14) lands: an ASGI wrapper that sends
the `ms:session` frame a protocol-2 client waits for, as that server will (token null:
recovery off). A no-op once `Application` takes `recovery_window`; then delete this file.
"""

from __future__ import annotations

import inspect
import json
from typing import Any
from urllib.parse import parse_qs

import microsockets

SERVER_SENDS_SESSION = "recovery_window" in inspect.signature(microsockets.Application).parameters


def with_session(app: Any) -> Any:
    """`app`, sending `ms:session` right after accept to clients that sent `ms_v=2`."""
    if SERVER_SENDS_SESSION:
        return app

    async def shimmed(scope: Any, receive: Any, send: Any) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        if scope["type"] != "websocket" or query.get("ms_v") != ["2"]:
            return await app(scope, receive, send)

        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "websocket.accept":
                payload = {"id": "", "token": None, "recovered": False}  # ws.id: not known here
                frame = json.dumps({"event": "ms:session", "payload": payload})
                await send({"type": "websocket.send", "text": frame})

        return await app(scope, receive, sending)

    return shimmed
