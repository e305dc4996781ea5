"""Writing the small TOML files the project makes itself (model cards, dataset.toml): Python's tomllib
reads TOML but does not write it, and these files hold only plain values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def toml_table(name: str, d: Mapping[str, Any]) -> list[str]:
    """A [name] table's lines, then a blank line; nothing for an empty table."""
    if not d:
        return []
    return [f"[{name}]", *[f"{k} = {toml_value(v)}" for k, v in d.items()], ""]


def preprocess_tables(spec: list[dict[str, Any]]) -> list[str]:
    """A chain spec as [[preprocess]] tables, as cards and dataset.toml record it."""
    lines: list[str] = []
    for step in spec:
        lines += ["[[preprocess]]", *[f"{k} = {toml_value(v)}" for k, v in step.items()], ""]
    return lines
