"""Which handler runs for which event name: `EventRouter` (imported from here since 1.0.0)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from .contract.handlers import Signature, typed
from .protocol import check_event_name

if TYPE_CHECKING:
    from .socket import Socket

Handler: TypeAlias = Callable[["Socket"], Awaitable[Any]]
"""`async def handler(ws)`; its return value is the acknowledgement, if one was asked."""

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

Router: TypeAlias = Callable[[str], "Handler | None"]
"""What the session looks events up in: an EventRouter, or metrics' timed view of one."""


class EventRouter:
    """A table from event names to handlers; `router(event)` is the handler or None."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._signatures: dict[str, Signature] = {}

    def add(self, event: str, func: Callable[..., Awaitable[Any]]) -> None:
        """Route `event` to `func`, replacing any handler it had.

        `func(ws)` gets the raw payload as `ws.payload`; `func(ws, data: T)` gets it validated
        as a T (docs/typing.md), read from the annotations once, here.
        """
        check_event_name(event)
        self._handlers[event], self._signatures[event] = typed(event, func)

    def on(self, event: str) -> Callable[[F], F]:
        """Decorator form of `add`."""
        check_event_name(event)

        def decorator(func: F) -> F:
            self.add(event, func)
            return func

        return decorator

    @property
    def signatures(self) -> Mapping[str, Signature]:
        """What each routed handler declares, by event, in the order they were added."""
        return self._signatures

    def __call__(self, event: str) -> Handler | None:
        return self._handlers.get(event)
