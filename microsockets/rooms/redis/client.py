"""Talking to Redis: a client that fails fast, a deadline for each call, reconnection back-off."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

T = TypeVar("T")

_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


def _client(
    url: str, timeout: float, max_connections: int, extra: Mapping[str, Any] | None
) -> Redis:
    """A client whose calls fail within `timeout` instead of retrying, and whose pool makes
    callers wait (up to `timeout`) rather than fail when all its connections are busy."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
        "timeout": timeout,
    }
    options.update(extra or {})
    options["decode_responses"] = False  # channels and messages are handled as bytes
    return Redis.from_pool(BlockingConnectionPool.from_url(url, **options))


async def _within(awaitable: Awaitable[T], timeout: float) -> T:
    """Await a Redis call for `timeout` seconds at most.

    Unlike a bare wait_for, an error the call raises while being cancelled is consumed
    rather than reported as "never retrieved".
    """
    task = asyncio.ensure_future(awaitable)
    task.add_done_callback(_consume)
    return await asyncio.wait_for(task, timeout)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _text(value: bytes | str) -> str:
    """A reply from Redis as text (the client returns bytes: decode_responses is off)."""
    return value.decode() if isinstance(value, bytes) else value


def _reconnect_delay(delays: Sequence[float], failures: int) -> float:
    """The wait before the next attempt after `failures` failed ones; the last delay repeats."""
    return delays[min(failures, len(delays) - 1)]
