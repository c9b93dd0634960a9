"""The room-manager contract suite (tests/test_rooms_contract.py) run against RedisRoomManager.

Every contract test that takes the `manager` fixture runs here again with a started Redis
manager, on one node and as seen from a second node of the same cluster.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable

import pytest

from microsockets.rooms import BaseRoomManager
from microsockets.rooms.redis import RedisRoomManager
from microsockets.types import JSON
from tests import test_rooms_contract as contract

pytest.register_assert_rewrite("tests.redis_server")
from tests.redis_server import RedisServer  # noqa: E402

pytest_plugins = ["tests.redis_server"]
pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

connect = contract.connect
settle = contract.settle
globals().update(
    {
        name: test
        for name, test in vars(contract).items()
        if name.startswith("test_") and "manager" in inspect.signature(test).parameters
    }
)


class _ClusterView(RedisRoomManager):
    """A node whose `members`/`rooms_of` answer from another node: the cluster-wide view."""

    viewer: RedisRoomManager

    async def members(self, room: str) -> set[str]:
        return await self.viewer.members(room)

    async def rooms_of(self, member_id: str) -> set[str]:
        return await self.viewer.rooms_of(member_id)

    async def presence(self, room: str) -> dict[str, JSON]:
        return await self.viewer.presence(room)

    def presence_counts(self, rooms: Callable[[str], bool]) -> None:
        super().presence_counts(rooms)
        self.viewer.presence_counts(rooms)


async def _ready(manager: RedisRoomManager) -> None:
    """start() waits operation_timeout at most; a slow machine may need longer."""
    for _ in range(500):
        if manager.redis_available:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the manager did not reach Redis within 5 s")


@pytest.fixture(params=["one-node", "seen-from-another-node"])
async def manager(
    request: pytest.FixtureRequest, redis_server: RedisServer, prefix: str
) -> AsyncIterator[BaseRoomManager]:
    options = {"channel_prefix": prefix, "node_ttl": 2.0, "operation_timeout": 1.0}
    if request.param == "one-node":
        made = RedisRoomManager(redis_server.url, **options)
        await made.start()
        await _ready(made)
        yield made
        await made.stop()
        return
    viewer = RedisRoomManager(redis_server.url, **options)
    node = _ClusterView(redis_server.url, **options)
    node.viewer = viewer
    await viewer.start()
    await node.start()
    await _ready(viewer)
    await _ready(node)
    yield node
    await node.stop()
    await viewer.stop()
