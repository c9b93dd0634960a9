"""The application's hooks: lifespan, connect and disconnect, and middleware around handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

if TYPE_CHECKING:
    from .connection import Connection
    from .events import Handler
    from .socket import Socket

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

LifespanHook: TypeAlias = Callable[[], Awaitable[None]]
ConnectHook: TypeAlias = Callable[["Connection"], Awaitable[None]]
DisconnectHook: TypeAlias = Callable[["Socket"], Awaitable[None]]
BeforeOn: TypeAlias = Callable[["Socket", "Handler"], Awaitable[Any]]


class HookList(list[F], Generic[F]):
    """A list of hooks that is also the decorator adding to it (`@app.hooks.on_startup`)."""

    def __call__(self, func: F) -> F:
        self.append(func)
        return func


class Hooks:
    """Every hook list of an Application; each runs its hooks in the order they were added."""

    def __init__(self) -> None:
        self.on_startup: HookList[LifespanHook] = HookList()
        """`async def f()`: at server start (ASGI lifespan), before any connection."""
        self.on_shutdown: HookList[LifespanHook] = HookList()
        """`async def f()`: once at server stop, after every connection has ended."""
        self.on_connect: HookList[ConnectHook] = HookList()
        """`async def f(ws)`: before the handshake is accepted; raise Reject to refuse it."""
        self.on_disconnect: HookList[DisconnectHook] = HookList()
        """`async def f(ws)`: once per event connection, after it has left its rooms."""
        self.before_on: HookList[BeforeOn] = HookList()
        """`async def f(ws, func)`: middleware around each handler; call `await func(ws)`."""

    async def run_handler(self, ws: Socket, handler: Handler) -> Any:
        """Run `handler` inside the before_on chain (first added is outermost).

        Returns the handler's own return value even when a hook does not pass it on, since
        hooks written for 1.0.0 end with a bare `await func(ws)`.
        """
        result: list[Any] = [None]

        async def innermost(ws: Socket) -> Any:
            result[0] = await handler(ws)
            return result[0]

        chain: Handler = innermost
        for hook in reversed(self.before_on):
            chain = _wrap(hook, chain)
        await chain(ws)
        return result[0]


def _wrap(hook: BeforeOn, inner: Handler) -> Handler:
    async def call(ws: Socket) -> Any:
        return await hook(ws, inner)

    return call
