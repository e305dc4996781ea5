"""A show file's validation error as a message a person can act on: the file, the key path, what was
found and what was expected, worked out from the schema itself so every new section is covered too."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from installation.core.errors import UserError

_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string in quotes",
               Path: "a path in quotes", type(None): "nothing"}

_RANGE_WORDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
                "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def describe(tp: Any) -> str:
    """What a value of this annotation looks like in TOML, in words."""
    origin = typing.get_origin(tp)
    if tp in _TYPE_WORDS:
        return _TYPE_WORDS[tp]
    if tp is Any:
        return "any value"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a table ([section] or { key = value })"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        plural = {str: "strings", Path: "paths", int: "integers", float: "numbers", bool: "true/false values"}
        return f"a list [...] of {plural[item]}" if item in plural else "a list [...]"
    if origin is dict:
        return "a table of values"
    return getattr(tp, "__name__", str(tp))


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str | int], Any, type[BaseModel] | None]:
    """The loc without pydantic's union-member tags, the annotation found there, and the model that holds
    the last key (for listing the known keys)."""
    path: list[str | int] = []
    tp: Any = model
    holder: type[BaseModel] | None = None
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            holder = tp
            if isinstance(part, str) and part in tp.model_fields:
                path.append(part)
                tp = tp.model_fields[part].annotation
                continue
            path.append(part)  # an unknown key
            tp = None
            continue
        origin = typing.get_origin(tp)
        if origin is list and isinstance(part, int):
            path.append(part)
            tp = (typing.get_args(tp) or (Any,))[0]
        elif origin is dict and isinstance(part, str):
            path.append(part)
            tp = (typing.get_args(tp) or (Any, Any))[1]
        # else: a union member's tag ('str', 'list[str]', 'function-after[...]'): not part of the file
    return path, tp, holder


def _unwrap(tp: Any) -> Any:
    """X | None -> X, so a section that may be absent is still walked into."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if len(args) == 1:
            return args[0]
    return tp


def key_path(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def explain(e: ValidationError, file: Path, model: type[BaseModel]) -> UserError:
    """The first error of a show file's validation, as a UserError with file, key and expectation."""
    errors = e.errors()
    first = errors[0]
    kind, ctx, msg = first["type"], first.get("ctx") or {}, first["msg"]
    path, tp, holder = _walk(model, tuple(first["loc"]))
    got = first.get("input")
    shown = f", got {got!r}" if got is not None and not isinstance(got, dict) and kind != "missing" else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        known = ", ".join(holder.model_fields) if holder is not None else "a known key"
        return UserError(f"unknown key {path[-1]!r}{more}", file=file, key=key_path(path),
                         expected=f"one of: {known}")
    if kind in _RANGE_WORDS:
        op, name = _RANGE_WORDS[kind]
        expected = f"{describe(tp) if tp is not None else 'a number'} {op} {ctx.get(name)}"
    elif kind == "literal_error":
        expected = f"one of {ctx.get('expected')}"
    elif kind == "value_error":
        text = str(ctx.get("error", msg))
        text, sep, exp = text.partition(" (expected ")
        if got is not None and repr(got) in text:
            shown = ""
        return UserError(text + shown + more, file=file, key=key_path(path),
                         expected=exp.rstrip(")") if sep else (describe(tp) if tp is not None else None))
    elif kind == "missing":
        expected = describe(tp) if tp is not None else "a value"
        msg = "missing"
    else:
        expected = describe(tp) if tp is not None else None
    return UserError(f"{msg}{shown}{more}", file=file, key=key_path(path), expected=expected)
