"""The query of one connection attempt: the app's own `params` (a value, or a function
called before every attempt), then the session's claim (session.py)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["Params", "ParamsSource", "attempt_url", "fresh_params"]

Params = Mapping[str, str | int | float]
ParamsSource = Params | Callable[[], Params | Awaitable[Params]]


async def fresh_params(source: ParamsSource | None) -> Params:
    """The params of the next attempt: `source` itself, or what the function returns now."""
    if source is None:
        return {}
    if not callable(source):
        return source
    result = source()
    return await result if inspect.isawaitable(result) else result


def attempt_url(url: str, params: Params, claim: Mapping[str, str]) -> str:
    """`url` with `params` and `claim` added to its query (the claim wins a clash)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({name: str(value) for name, value in params.items()})
    query.update(claim)
    return urlunsplit(parts._replace(query=urlencode(query)))
