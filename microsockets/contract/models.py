"""What a type annotation means on the wire: validation into it, its JSON Schema, its encoding.

pydantic handles annotations that involve pydantic (models, `Field`, pydantic dataclasses);
msgspec handles everything else (dataclasses, TypedDict, msgspec.Struct, `list[int]`...).
Each library is imported only when an annotation needs it, so an app without typed
handlers imports neither (docs/typing.md).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import typing
from collections.abc import Callable, Iterator
from typing import Any

from ..exceptions import InvalidPayload
from ..types import JSON

__all__ = ["MAX_ERRORS", "REF", "is_any", "schema_of", "to_builtins", "validator"]

REF = "#/components/schemas/{name}"
"""Where the named schemas of models live: the AsyncAPI document's components."""

MAX_ERRORS = 10
"""An `invalid_payload` message names at most this many failing fields."""

_MAX_KEY = 64  # characters of a (client-chosen) key kept in a field path


def is_any(annotation: Any) -> bool:
    """True for a missing annotation or `Any`: the payload is taken as it came."""
    return annotation is Any or annotation is inspect.Parameter.empty


def validator(annotation: Any, where: str) -> Callable[[JSON], Any]:
    """A function validating JSON builtins into `annotation`, raising InvalidPayload naming
    the failing fields; `where` names the annotation in errors at registration."""
    if _uses_pydantic(annotation):
        return _pydantic_validator(annotation)
    msgspec = _require("msgspec", annotation, where)
    try:
        msgspec.json.schema(annotation)  # refuses a type msgspec cannot handle, at registration
    except TypeError as exc:
        raise TypeError(f"{where}: msgspec cannot validate {annotation!r}: {exc}") from None
    convert, error = msgspec.convert, msgspec.ValidationError

    def validate(value: JSON) -> Any:
        try:
            return convert(value, annotation)
        except error as exc:
            raise InvalidPayload(_msgspec_message(str(exc))) from None

    return validate


def schema_of(annotation: Any, where: str) -> tuple[JSON, dict[str, JSON]]:
    """The JSON Schema of `annotation` and the named schemas it refers to (at REF).

    pydantic's validation-mode schema, for replies and events too: one schema per model
    name (its serialisation-mode one may differ, a Decimal as a string only, say).
    """
    if is_any(annotation):
        return {}, {}
    if annotation is None or annotation is type(None):
        return {"type": "null"}, {}
    if _uses_pydantic(annotation):
        pydantic = sys.modules["pydantic"]
        schema = pydantic.TypeAdapter(annotation).json_schema(
            ref_template=REF.replace("{name}", "{model}")
        )
        components = schema.pop("$defs", {})
        if isinstance(annotation, type) and schema.get("type") == "object":
            # A model at the root comes inline; name it, as msgspec does and nested ones are.
            name = re.sub(r"[^\w.-]", "_", annotation.__name__)
            components[name] = schema
            schema = {"$ref": REF.format(name=name)}
        return schema, components
    msgspec = _require("msgspec", annotation, where)
    (schema,), components = msgspec.json.schema_components([annotation], ref_template=REF)
    return schema, components


def to_builtins(value: Any) -> JSON:
    """JSON builtins for a model instance: the codecs' fallback for values they cannot encode.

    Only models: pydantic's, msgspec Structs and dataclasses (which orjson encodes itself).
    Raises TypeError for anything else, as the codecs do, whatever is imported.
    """
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _require(name: str, annotation: Any, where: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise TypeError(
            f"{where}: the annotation {annotation!r} needs {name}; "
            f"install it with pip install 'microsockets[{name}]'"
        ) from None


def _uses_pydantic(annotation: Any) -> bool:
    """Whether anything in the annotation comes from pydantic (only possible once imported)."""
    if "pydantic" not in sys.modules:
        return False
    return any(
        (getattr(part, "__module__", None) or type(part).__module__).startswith("pydantic")
        or hasattr(part, "__pydantic_fields__")
        for part in _parts(annotation)
    )


def _parts(annotation: Any) -> Iterator[Any]:
    """The annotation, its type arguments and `Annotated` metadata, recursively."""
    yield annotation
    yield from getattr(annotation, "__metadata__", ())
    for arg in typing.get_args(annotation):
        yield from _parts(arg)


def _pydantic_validator(annotation: Any) -> Callable[[JSON], Any]:
    pydantic = sys.modules["pydantic"]
    adapter_validate = pydantic.TypeAdapter(annotation).validate_python
    error = pydantic.ValidationError

    def validate(value: JSON) -> Any:
        try:
            return adapter_validate(value)
        except error as exc:
            raise InvalidPayload(_pydantic_message(exc)) from None

    return validate


def _pydantic_message(exc: Any) -> str:
    """The first MAX_ERRORS of pydantic's errors, read off its JSON rendering.

    `exc.errors()` builds a Python dict per error: for a hostile 1 MB list of 250,000 bad
    items that took a second and a half, `exc.json()` a tenth of one; only the first
    errors of it are decoded.
    """
    count = exc.error_count()
    text = exc.json(include_url=False, include_input=False, include_context=False)
    shown, position = [], text.index("[") + 1
    for _ in range(min(count, MAX_ERRORS)):
        while text[position] in " ,\n":
            position += 1
        error, position = _DECODER.raw_decode(text, position)
        shown.append(f"{_path(error['loc'])}: {_lower(error['msg'])}")
    if count > MAX_ERRORS:
        shown.append(f"and {count - MAX_ERRORS} more")
    return "; ".join(shown)


_DECODER = json.JSONDecoder()


def _path(loc: list[str | int]) -> str:
    """`$.user.tags[2]`, the path style msgspec writes, for pydantic's `loc`."""
    parts = ["$"]
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif key.isidentifier():
            parts.append(f".{key[:_MAX_KEY]}")
        else:
            parts.append("[...]")  # a client's dict key: msgspec does not repeat it either
    return "".join(parts)


_MSGSPEC_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_MSGSPEC_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")


def _msgspec_message(text: str) -> str:
    """msgspec's "Expected `int`, got `str` - at `$.n`" as "$.n: expected int, got str"."""
    match = _MSGSPEC_AT.match(text)
    assert match is not None  # the pattern matches any text
    message, path = match["message"], match["path"] or "$"
    missing = _MSGSPEC_MISSING.match(message)
    if missing:
        return f"{path}.{missing['field']}: field required"
    return f"{path[: _MAX_KEY * 4]}: {_lower(message.replace('`', ''))}"


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]
