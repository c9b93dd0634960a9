"""Typed handlers: `async def join(ws, data: Join) -> Joined`, read once when registered.

A handler that takes a second parameter (without a default) is wrapped into a plain
`Handler` (`handler(ws)`) that validates `ws.payload` (as any before_on hook left it) and
calls `func(ws, data)`.
Handlers that take only `ws` are not wrapped: their per-frame path stays what it was.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .models import is_any, validator

if TYPE_CHECKING:
    from ..socket import Socket

__all__ = ["Signature", "typed"]


class Signature(NamedTuple):
    """What a handler declares: its payload's and its reply's annotations (`empty`: none)."""

    payload: Any
    reply: Any


UNTYPED = Signature(inspect.Parameter.empty, inspect.Parameter.empty)


def typed(
    event: str, func: Callable[..., Awaitable[Any]]
) -> tuple[Callable[[Socket], Awaitable[Any]], Signature]:
    """The handler to route `event` to, and what `func` declares.

    Raises TypeError at registration when a typed handler's annotations cannot be read or
    need a library that is not installed.
    """
    where = f"the handler of {event!r}"
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a callable without a signature: called as handler(ws)
        return func, UNTYPED
    # The payload is the second positional parameter without a default: `(ws, extra=None)`
    # stays a 1.0.0 handler, called as handler(ws).
    params = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(params) < 2:
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except Exception:  # an untyped handler may annotate with names it imports lazily
            return func, UNTYPED
        return func, Signature(inspect.Parameter.empty, hints.get("return", UNTYPED.reply))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"cannot read the annotations of {where} ({exc}); "
            "define the types it names at module level"
        ) from None
    signature = Signature(
        hints.get(params[1].name, inspect.Parameter.empty), hints.get("return", UNTYPED.reply)
    )
    if is_any(signature.payload):
        return _unvalidated(func), signature
    return _validated(func, validator(signature.payload, where)), signature


def _validated(
    func: Callable[..., Awaitable[Any]], validate: Callable[[Any], Any]
) -> Callable[[Socket], Awaitable[Any]]:
    @functools.wraps(func)
    async def handler(ws: Socket) -> Any:
        return await func(ws, validate(ws.payload))

    return handler


def _unvalidated(func: Callable[..., Awaitable[Any]]) -> Callable[[Socket], Awaitable[Any]]:
    @functools.wraps(func)
    async def handler(ws: Socket) -> Any:
        return await func(ws, ws.payload)

    return handler
