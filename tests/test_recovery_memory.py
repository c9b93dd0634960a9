"""Memory of recovery: 10,000 sessions kept inside their window with the log full hold a
bounded amount per session, and once the window has passed memory is back to its baseline.

The server runs in a subprocess with tracemalloc on (it counts Python allocations, not RSS,
which the allocator keeps); the clients are the raw client of tests/helpers_ws.py, which
vanish with a TCP reset so that every session is detached, not ended. Figures are printed
(pytest -s) and go in the closing note of issue 14.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import sys
from pathlib import Path

import pytest

from .conftest import free_port
from .helpers_ws import RawClient
from .test_soak import Admin, connect_all, raise_fd_limit

pytestmark = pytest.mark.anyio

SESSIONS = int(os.environ.get("MS_RECOVERY_SESSIONS", "10000"))
WINDOW = 15.0  # longer than filling the log takes under tracemalloc
LOG_ENTRIES = 100_000  # microsockets.recovery.log.MAX_ENTRIES: the log at its bound
PER_SESSION_BOUND = 6_000
"""Bytes a kept session may cost at most (its socket, outbox, state and token)."""
RESIDUE_BOUND = 500 * SESSIONS
"""Bytes above the baseline once every session is over: the hash tables that grew to hold
SESSIONS entries (the room index, the registry, the event loop's selector, uvicorn's set of
connections) keep their size for the next ones; no session object is left (sessions and log
are counted empty)."""


async def figures(admin: Admin, measure: bool = False) -> dict[str, int]:
    result: dict[str, int] = await admin.ask("figures", measure)
    return result


async def test_kept_sessions_cost_a_bounded_amount_and_are_freed_after_the_window() -> None:
    raise_fd_limit(SESSIONS + 200)  # the client ends; the server has its own
    port = free_port()
    root = Path(__file__).parent.parent
    server = await asyncio.create_subprocess_exec(
        sys.executable, "tests/recovery_soak_app.py", str(port), str(WINDOW), cwd=root
    )
    url = f"ws://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                admin = Admin(await RawClient.connect(url))
                break
            except OSError:
                await asyncio.sleep(0.05)
        baseline = await figures(admin, measure=True)
        assert await admin.ask("fill", LOG_ENTRIES) == LOG_ENTRIES
        full = await figures(admin, measure=True)
        assert full["log"] == LOG_ENTRIES

        clients = await connect_all(f"{url}/?ms_v=2", SESSIONS)
        for client in clients:  # in a room, as a chat user would be
            await client.send_text(json.dumps({"event": "join", "payload": "lobby"}))
        for _ in range(200):
            live = await figures(admin)
            if live["sessions"] == SESSIONS + 1:
                break
            await asyncio.sleep(0.05)
        for client in clients:
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        clients.clear()
        for _ in range(400):
            kept = await figures(admin)
            if kept["detached"] == SESSIONS and kept["connections"] == 1:
                break
            await asyncio.sleep(0.05)
        assert kept["detached"] == SESSIONS
        kept = await figures(admin, measure=True)
        assert kept["log"] == LOG_ENTRIES
        per_session = (kept["bytes"] - full["bytes"]) / SESSIONS
        log_bytes = full["bytes"] - baseline["bytes"]
        print(
            f"\n{SESSIONS} kept sessions: {per_session:.0f} bytes each;"
            f" the log of {LOG_ENTRIES} frames: {log_bytes / LOG_ENTRIES:.0f} bytes per entry"
        )
        assert per_session < PER_SESSION_BOUND

        for _ in range(int(WINDOW * 20) + 400):  # the window, then the log's trim
            after = await figures(admin)
            if after["sessions"] == 1 and after["log"] == 0:  # the admin connection
                break
            await asyncio.sleep(0.05)
        assert after["sessions"] == 1
        assert after["log"] == 0
        for _ in range(20):  # uvicorn and asyncio let go of the closed transports a bit later
            after = await figures(admin, measure=True)
            if after["bytes"] - baseline["bytes"] < RESIDUE_BOUND:
                break
            await asyncio.sleep(0.5)
        print(f"after the window: {after['bytes'] - baseline['bytes']:+d} bytes against baseline")
        assert after["bytes"] - baseline["bytes"] < RESIDUE_BOUND
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 20)
