"""A setting's annotation as plain JSON (its type, its choices, its bounds), and a config value judged by it.

One judge for both homes of a rule: the config check reads a `_target_`'s annotations (or their JSON from the
schema cache) and the object built from Python checks its own arguments by the same annotation. Bounds are
annotated-types' (`Annotated[int, Ge(1)]`); a hint it cannot judge is "any", which every value fits.

The JSON: "any", "bool", "int", "float", "str", "null"; {"one_of": [values]} (a Literal); {"any_of": [hints]}
(a union); {"list_of": hint}; {"bounded": hint, "gt"/"ge"/"lt"/"le": number}.
"""

import collections.abc
import types
import typing
from typing import Annotated, Literal, Union

import annotated_types

from prunelab.errors import ConfigError

SEQUENCES = (list, tuple, collections.abc.Sequence)
NAMES = {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}
WORDS = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string", "null": "null",
         "any": "anything"}
PLURALS = {"bool": "booleans", "int": "integers", "float": "numbers", "str": "strings"}
BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def encode(hint) -> typing.Any:
    """`hint` (a type annotation) as plain JSON."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _bounded(encode(args[0]), hint.__metadata__)
    if origin in (Union, types.UnionType):
        return {"any_of": [encode(a) for a in args]}
    if origin is Literal:
        plain = all(v is None or type(v) in (bool, int, str) for v in args)
        return {"one_of": list(args)} if plain else "any"
    if hint in SEQUENCES or origin in SEQUENCES:
        return {"list_of": encode(args[0]) if args and args[0] is not ... else "any"}
    return NAMES.get(hint, "any") if isinstance(hint, typing.Hashable) else "any"


def _bounded(base, metadata) -> typing.Any:
    flat = [m for meta in metadata for m in (meta if isinstance(meta, annotated_types.GroupedMetadata) else [meta])]
    bounds = {k: getattr(m, k) for m in flat for k in BOUNDS
              if isinstance(m, annotated_types.BaseMetadata) and isinstance(getattr(m, k, None), (int, float))}
    return {"bounded": base, **bounds} if bounds else base


def describe(h) -> str:
    """The encoded hint `h` in words, for messages."""
    if isinstance(h, str):
        return WORDS[h]
    if "one_of" in h:
        return f"one of {h['one_of']}"
    if "list_of" in h:
        item = h["list_of"]
        return f"a list of {PLURALS.get(item, 'values') if isinstance(item, str) else 'values'}"
    if "bounded" in h:
        return f"{describe(h['bounded'])} {_bound_words(h)}"
    choices = [v for a in h["any_of"] if isinstance(a, dict) and "one_of" in a for v in a["one_of"]]
    others = [describe(a) for a in h["any_of"] if not (isinstance(a, dict) and "one_of" in a)]
    return " or ".join([describe({"one_of": choices})] * bool(choices) + others)


def _bound_words(h: dict) -> str:
    return " and ".join(f"{BOUNDS[k]} {h[k]}" for k in BOUNDS if k in h)


def fits(value, h, bounds: bool = True) -> bool:
    """Whether a plain config value fits the encoded hint `h` (its bounds too, unless `bounds` is false)."""
    if isinstance(h, str):
        return _fits_name(value, h)
    if "one_of" in h:
        return value in h["one_of"]
    if "any_of" in h:
        return any(fits(value, a, bounds) for a in h["any_of"])
    if "list_of" in h:
        return isinstance(value, (list, tuple)) and all(fits(v, h["list_of"], bounds) for v in value)
    return fits(value, h["bounded"], bounds) and (not bounds or _within(value, h))


def _fits_name(value, name: str) -> bool:
    if name in ("int", "float", "str"):
        ok = {"int": int, "float": (int, float), "str": str}[name]
        return isinstance(value, ok) and not isinstance(value, bool)
    return {"bool": isinstance(value, bool), "null": value is None}.get(name, True)


def _within(value, h: dict) -> bool:
    compare = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b}
    try:
        return all(compare[k](value, h[k]) for k in BOUNDS if k in h)
    except TypeError:
        return False


def misfit(setting: str, value, h) -> tuple[str, str] | None:
    """(problem, fix) when `value` does not fit the encoded hint `h` of `setting`, else None."""
    if fits(value, h):
        return None
    members = h["any_of"] if isinstance(h, dict) and "any_of" in h else [h]
    bounded = next((m for m in members if isinstance(m, dict) and "bounded" in m and fits(value, m, bounds=False)), None)
    if bounded is not None:
        words = _bound_words(bounded)
        fix = (f"set {setting}={bounded['ge']} or more" if set(bounded) == {"bounded", "ge"}
               else f"set {setting} to a value {words}")
        return f"must be {words}, got {value!r}", fix
    words = describe(h)
    if all(isinstance(m, dict) and "one_of" in m for m in members):  # a choice: say which kind of thing is unknown
        return f"unknown {setting.rpartition('.')[2]} {value!r}", f"use {words}"
    return f"{value!r} is not {words}", f"give {words}"


def check(setting: str, value, hint) -> None:
    """Raise a ConfigError naming `setting` when `value` does not fit the annotation `hint` (its choices, bounds)."""
    problem = misfit(setting, value, encode(hint))
    if problem:
        raise ConfigError(setting, *problem)
