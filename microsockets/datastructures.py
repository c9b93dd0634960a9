"""Read-only views of the handshake request: query parameters (headers use websockets')."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl


class QueryParams(Mapping[str, str]):
    """The query string as a mapping: `params["a"]` is the last value, `getlist("a")` all."""

    def __init__(self, query_string: str) -> None:
        self._items = parse_qsl(query_string, keep_blank_values=True)
        self._last = dict(self._items)

    def __getitem__(self, key: str) -> str:
        return self._last[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._last)

    def __len__(self) -> int:
        return len(self._last)

    def getlist(self, key: str) -> list[str]:
        """Every value given for `key`, in order."""
        return [value for name, value in self._items if name == key]

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"
