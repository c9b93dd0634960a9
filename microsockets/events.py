"""Which handler runs for which event name: `EventRouter` (imported from here since 1.0.0)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from .protocol import check_event_name

if TYPE_CHECKING:
    from .socket import Socket

Handler: TypeAlias = Callable[["Socket"], Awaitable[Any]]
"""`async def handler(ws)`; its return value is the acknowledgement, if one was asked."""

Router: TypeAlias = Callable[[str], "Handler | None"]
"""What the session looks events up in: an EventRouter, or metrics' timed view of one."""


class EventRouter:
    """A table from event names to handlers; `router(event)` is the handler or None."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, event: str, func: Handler) -> None:
        """Route `event` to `func`, replacing any handler it had."""
        check_event_name(event)
        self._handlers[event] = func

    def on(self, event: str) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""
        check_event_name(event)

        def decorator(func: Handler) -> Handler:
            self.add(event, func)
            return func

        return decorator

    def __call__(self, event: str) -> Handler | None:
        return self._handlers.get(event)
