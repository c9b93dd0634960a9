"""JSON encoding and decoding: orjson when installed (`microsockets[fast]`), else the stdlib.

Both back-ends accept and refuse the same documents (docs/protocol.md): no NaN or Infinity,
no number that overflows a double, no lone surrogate, nesting bounded by the codec. Both
write compact UTF-8 JSON with keys in insertion order; only some floats are spelled
differently (`1.5e-05` and `0.000015`), with the same value.

Both encode model instances (pydantic, msgspec, dataclasses) through `to_builtins`, which
they call only for values they cannot encode themselves: plain payloads pay nothing for it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import NamedTuple

from .contract.models import to_builtins
from .types import JSON

__all__ = ["DEFAULT", "STDLIB", "Codec", "DecodeError"]


class DecodeError(ValueError):
    """The text is not a JSON document this library accepts."""


class Codec(NamedTuple):
    """A pair of JSON functions: `loads` raises ValueError (DecodeError, or a JSONDecodeError
    of json or orjson) for text it refuses; `dumps` raises TypeError for values JSON cannot hold.
    """

    name: str
    loads: Callable[[str], JSON]
    dumps: Callable[[JSON], str]


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise DecodeError("number too large for a double")
    return value


def _finite_int(text: str) -> int:
    """An integer a double can hold (as orjson requires); longer digit strings never convert."""
    if len(text) > 310:  # 10**309 and beyond: past the largest double, whatever the digits
        raise DecodeError("number too large for a double")
    value = int(text)
    if len(text) > 308:
        try:
            float(value)  # rounds as a JSON parser would; past the largest double: overflow
        except OverflowError:
            raise DecodeError("number too large for a double") from None
    return value


def _refuse_constant(name: str) -> JSON:
    raise DecodeError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(
    parse_float=_finite_float, parse_int=_finite_int, parse_constant=_refuse_constant
)
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=to_builtins
)


def _stdlib_loads(text: str) -> JSON:
    try:
        value = _decoder.decode(text)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() past sys.get_int_max_str_digits()
        raise DecodeError(str(exc)) from None
    if _SURROGATE_ESCAPE.search(text):  # rare: only frames that escape a surrogate pay this
        try:
            _encoder.encode(value).encode()
        except UnicodeEncodeError:
            raise DecodeError("lone UTF-16 surrogate in a string") from None
    return value


def _stdlib_dumps(value: JSON) -> str:
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:  # not JSON; NaN; nested too deep
        raise TypeError(f"payload is not JSON-serializable: {exc}") from None


STDLIB = Codec("json", _stdlib_loads, _stdlib_dumps)

try:
    import orjson
except ImportError:  # pragma: no cover - the stdlib run of the suite covers this
    DEFAULT = STDLIB
else:
    _ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS

    def _orjson_dumps(value: JSON) -> str:
        try:
            return orjson.dumps(value, default=to_builtins, option=_ORJSON_OPTIONS).decode()
        except orjson.JSONEncodeError as exc:
            raise TypeError(f"payload is not JSON-serializable: {exc}") from None

    DEFAULT = Codec("orjson", orjson.loads, _orjson_dumps)  # its JSONDecodeError is a ValueError
