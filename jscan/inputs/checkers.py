"""The config's value checkers and the `Key` record the schema is made of.

A checker takes (full key, raw TOML value) and returns the validated value, or raises a
one-line ConfigError that names the key and the fix.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, NamedTuple

from jscan.errors import ConfigError

# ---- value checkers: (full key, raw TOML value) -> validated value ----


def _number(key: str, value: Any, above: float = -math.inf, or_equal: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f'"{key}" must be a number, got {value!r} ({type(value).__name__}); '
            "write a TOML number such as 1.5e-6 (no quotes, not true/false)"
        )
    number = float(value) if abs(value) < 1e308 else math.inf
    if not math.isfinite(number):
        raise ConfigError(f'"{key}" must be finite, got {value!r}; write a finite number')
    if number < above or (number == above and not or_equal):
        bound = f"{'>=' if or_equal else '>'} {above:g}"
        raise ConfigError(f'"{key}" must be {bound}, got {value!r}; write a value {bound}')
    return number


def _positive(key: str, value: Any) -> float:
    return _number(key, value, above=0.0)


def _non_negative(key: str, value: Any) -> float:
    return _number(key, value, above=0.0, or_equal=True)


def _integer(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f'"{key}" must be an integer, got {value!r} ({type(value).__name__}); '
            "write a whole number such as 64"
        )
    if value < minimum:
        raise ConfigError(f'"{key}" must be >= {minimum}, got {value}; write a larger integer')
    if value >= 2**63:  # numpy and the store hold integers in 64 bits
        raise ConfigError(f'"{key}" must be below 2**63, got {value:.3g}; write a smaller integer')
    return value


def _seed(key: str, value: Any) -> int:
    seed = _integer(key, value, minimum=0)
    if seed >= 2**63:  # keys numpy's generators with the seed as a uint64
        raise ConfigError(f'"{key}" must be below 2**63, got {seed}; use a smaller seed')
    return seed


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f'"{key}" must be true or false, got {value!r}; write {key.rsplit(".", 1)[-1]} = true'
        )
    return value


def _fraction(key: str, value: Any) -> float:
    number = _positive(key, value)
    if number > 1:
        raise ConfigError(f'"{key}" must be in (0, 1], got {value!r}; write a ratio such as 0.5')
    return number


def _gaps(key: str, value: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if not isinstance(value, dict) or not value or set(value) - {"rows", "cols"}:
        raise ConfigError(
            f'"{key}" must be a table of camera pixel indices, got {value!r}; write '
            f"{key.rsplit('.', 1)[-1]} = {{rows = [255, 256], cols = [511]}}"
        )
    lists = []
    for axis in ("rows", "cols"):
        items = value.get(axis, [])
        if not isinstance(items, list):
            raise ConfigError(f'"{key}.{axis}" must be a list of pixel indices, got {items!r}')
        lists.append(tuple(_integer(f"{key}.{axis}[{i}]", v, 0) for i, v in enumerate(items)))
    return lists[0], lists[1]


def _pair(key: str, value: Any, check=_number) -> tuple:
    if not isinstance(value, list) or len(value) != 2:
        leaf = key.rsplit(".", 1)[-1]
        raise ConfigError(
            f'"{key}" must be a list of two values, got {value!r}; write {leaf} = [a, b]'
        )
    return (check(f"{key}[0]", value[0]), check(f"{key}[1]", value[1]))


def _shape(key: str, value: Any) -> tuple[int, int]:
    return _pair(key, value, _integer)


check_integer = _integer  # for overrides from the command line and the API


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f'"{key}" must be a string, got {value!r}; write it in quotes')
    return value


def _path(key: str, value: Any) -> str:
    if not _string(key, value):
        raise ConfigError(f'"{key}" is empty; write the path of the file')
    return value


def _choice(*choices: str):
    def check(key: str, value: Any) -> str:
        if _string(key, value) not in choices:
            listed = " or ".join(f'"{c}"' for c in choices)
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"use {listed}"
            raise ConfigError(f'"{key}" must be {listed}, got "{value}"; {hint}')
        return value

    check.choices = choices
    return check


REQUIRED = object()  # the default of a key that must be given
_ALL = None  # a key allowed for every kind
_FOCUSED = ("lens", "zone_plate")  # probe kinds made by jscan.inputs.focused
_PROCEDURAL = ("gaussian", "airy", *_FOCUSED)  # probe kinds made on a size x size window


class Key(NamedTuple):
    """One config key of the schema: how it is checked, where it applies, its documentation.

    check: (full key, raw TOML value) -> validated value; kinds: the section kinds the key
    is allowed for (None: every kind); default: its value when absent (`REQUIRED`: none);
    unit: its unit ("" for none); doc: one sentence for the reference table and the
    template (`jscan.inputs.reference`); example: a value for the template when it has
    no default (or a dict of one per kind).
    """

    check: Any
    kinds: tuple[str, ...] | None
    default: Any
    unit: str = ""
    doc: str = ""
    example: Any = None
