"""The Socket's event handlers: registered with `on`, each with the validator its payload
annotation asks for (the model classes server handlers take)."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

from ..contract.models import is_any, validator
from ..exceptions import ProtocolError
from ..types import JSON

__all__ = ["Handler", "Handlers", "call", "run"]

log = logging.getLogger("microsockets.client")

Handler = tuple[Callable[..., Any], Callable[[JSON], Any] | None]
"""A handler and the validator of its payload, None when untyped."""


class Handlers:
    """Handlers by event name; an event without any has no entry."""

    def __init__(self) -> None:
        self._by_event: dict[str, list[Handler]] = {}

    def add(self, event: str, func: Callable[..., Any]) -> None:
        self._by_event.setdefault(event, []).append((func, _payload_validator(func)))

    def remove(self, event: str, func: Callable[..., Any] | None = None) -> None:
        """Remove `func` from `event`, or all of the event's handlers when it is None."""
        kept = [entry for entry in self._by_event.get(event, []) if func not in (None, entry[0])]
        if kept:
            self._by_event[event] = kept
        else:
            self._by_event.pop(event, None)

    def of(self, event: str) -> list[Handler]:
        """The handlers of `event`, a copy (a handler may remove itself)."""
        return list(self._by_event.get(event, ()))


def _payload_validator(func: Callable[..., Any]) -> Callable[[JSON], Any] | None:
    """The validator of a handler's first parameter's annotation, None when untyped."""
    try:
        first = next(iter(inspect.signature(func).parameters.values()), None)
        hints = typing.get_type_hints(func, include_extras=True)
    except (TypeError, ValueError, NameError):
        return None
    annotation = (
        hints.get(first.name, inspect.Parameter.empty) if first else inspect.Parameter.empty
    )
    if is_any(annotation):
        return None
    return validator(annotation, f"handler {getattr(func, '__qualname__', func)!r}")


async def call(callback: Callable[..., Any] | None, *args: Any) -> None:
    """Run a user callback or handler, sync or async; its exception is logged, not raised."""
    if callback is None:
        return
    try:
        result = callback(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("error in %s", getattr(callback, "__name__", repr(callback)))


async def run(handler: Handler, event: str, payload: JSON) -> None:
    """Call a handler with `payload`, validated first when it is typed; a payload that does
    not validate is logged and not delivered."""
    func, validate = handler
    try:
        await call(func, payload if validate is None else validate(payload))
    except ProtocolError as exc:
        log.warning("%r payload did not validate: %s", event, exc.message)
