"""URL paths: patterns such as "/raw/{name}" for raw WebSocket routes and the event path."""

from __future__ import annotations

import re
from typing import Any

from .types import Scope

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


class PathPattern:
    """A path with `{name}` segments; `match` gives the parameters or None."""

    __slots__ = ("pattern", "regex")

    def __init__(self, pattern: str) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"a path starts with '/': {pattern!r}")
        self.pattern = pattern
        parts, position = [], 0
        for found in _PARAM.finditer(pattern):
            parts.append(re.escape(pattern[position : found.start()]))
            parts.append(f"(?P<{found.group(1)}>[^/]+)")
            position = found.end()
        parts.append(re.escape(pattern[position:]))
        self.regex = re.compile("^" + "".join(parts) + "$")

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        return None if found is None else found.groupdict()

    def __repr__(self) -> str:
        return f"PathPattern({self.pattern!r})"


def route_path(scope: Scope) -> str:
    """The request path below the mount point (`root_path`), as Starlette computes it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


def with_params(scope: Scope, params: dict[str, Any]) -> Scope:
    """The scope with `path_params` merged in (the ASGI convention Starlette follows)."""
    scope["path_params"] = {**scope.get("path_params", {}), **params}
    return scope
