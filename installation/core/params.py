"""The parameter registry: every live value declared once, and the store that holds the current values.

A Param says what a value is (type, range, default, unit, description, smoothing). Modules declare
their own in a module-level PARAMS list; `show.params.default_registry()` gathers them. Everything that changes
a value (OSC, keys, presets, show files, replay) calls ParamStore.set(), which coerces and clamps.
Each frame reads one immutable Snapshot, so nothing changes mid-frame.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["float", "int", "bool", "choice", "trigger", "str"]

class ParamError(ValueError):
    """A value that can't be used for a parameter (wrong type, NaN, unknown name)."""


@dataclass(frozen=True)
class Param:
    name: str  # "group/name", the OSC address without the leading slash
    kind: Kind
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    description: str = ""
    smoothing_s: float = 0.0  # live changes glide over this long (float params only)
    persist: bool = True  # restored after a restart; triggers and transient state never are

    def __post_init__(self) -> None:
        if "/" not in self.name or self.name.startswith("/"):
            raise ValueError(f"parameter name must be 'group/name': {self.name!r}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"{self.name}: a choice needs choices")
        if self.kind in ("float", "int") and (self.lo is None or self.hi is None):
            raise ValueError(f"{self.name}: numbers need a range")
        if self.kind not in ("float", "int") and (self.lo is not None or self.hi is not None):
            raise ValueError(f"{self.name}: only numbers have a range")
        if not self.description:
            raise ValueError(f"{self.name}: every parameter needs a one-line description")
        if self.kind != "trigger":
            self.coerce(self.default)  # a default out of range is a programming error: fail at import

    @property
    def address(self) -> str:
        return "/" + self.name

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]

    def coerce(self, value: Any) -> Any:
        """The value as this parameter's type, clamped to range. Raises ParamError when impossible."""
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise ParamError(f"{self.address} takes one value, got {len(value)}")
            value = value[0]
        k = self.kind
        if k == "trigger":
            return _number(self, value) != 0
        if k == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "on", "yes"):
                    return True
                if low in ("0", "false", "off", "no"):
                    return False
                raise ParamError(f"{self.address} expects a bool, got {value!r}")
            return _number(self, value) != 0
        if k == "choice":
            if isinstance(value, str):
                if value in self.choices:
                    return value
                if value.strip().lstrip("-").isdigit():
                    value = int(value)
                else:
                    raise ParamError(f"{self.address} expects one of {list(self.choices)}, got {value!r}")
            i = int(_number(self, value))
            if not 0 <= i < len(self.choices):
                raise ParamError(f"{self.address} choice index {i} outside 0..{len(self.choices) - 1}")
            return self.choices[i]
        if k == "str":
            if not isinstance(value, str):
                raise ParamError(f"{self.address} expects a string, got {type(value).__name__}")
            return value
        x = _number(self, value)
        assert self.lo is not None and self.hi is not None
        x = min(max(x, self.lo), self.hi)
        return round(x) if k == "int" else float(x)

    def check_wire(self, value: Any) -> None:
        """The one type rule for a value from the network (OSC over UDP, the web's OSC): a number for a number
        (never the text "5", never T/F), T/F or a number for a bool (a toggle sends 0/1), a name or an index
        for a choice, text for text, nothing, T/F or a number for a trigger. Show files and --set go through
        coerce() alone, which also reads text. Raises ParamError."""
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {"float": number, "int": number, "bool": number or isinstance(value, bool),
              "choice": isinstance(value, str) or (number and float(value).is_integer()),
              "str": isinstance(value, str), "trigger": number or isinstance(value, bool)}[self.kind]
        if not ok:
            want = {"float": "a number", "int": "a number", "bool": "T, F or a number",
                    "choice": "a choice's name or index", "str": "text", "trigger": "nothing, T, F or a number"}
            raise ParamError(f"{self.address} expects {want[self.kind]}, got {type(value).__name__} {value!r:.40}")

    def describe_range(self) -> str:
        if self.kind in ("float", "int"):
            return f"{self.lo:g}..{self.hi:g}"
        if self.kind == "choice":
            return "|".join(self.choices)
        return {"bool": "0|1", "trigger": "non-zero fires", "str": "text"}[self.kind]


def _number(p: Param, value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value)
        except ValueError:
            raise ParamError(f"{p.address} expects a number, got {value!r}") from None
    else:
        raise ParamError(f"{p.address} expects a number, got {type(value).__name__}")
    if not math.isfinite(x):
        raise ParamError(f"{p.address} got a non-finite number ({x})")
    return x


class Registry(Mapping[str, Param]):
    """All declared parameters, by name. Declaring a name twice is an error."""

    def __init__(self, params: Iterable[Param]) -> None:
        self._params: dict[str, Param] = {}
        for p in params:
            if p.name in self._params:
                raise ValueError(f"parameter {p.name} declared twice")
            self._params[p.name] = p

    def __getitem__(self, name: str) -> Param:
        return self._params[name.lstrip("/")]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lstrip("/") in self._params

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def add(self, params: Iterable[Param]) -> None:
        """Parameters a show declares for itself (one /output/NAME/on per output), before any store is made
        from this registry; one already declared the same way is kept."""
        for p in params:
            if self._params.get(p.name, p) != p:
                raise ValueError(f"parameter {p.name} declared twice")
            self._params[p.name] = p

    def lookup(self, name: str) -> Param:
        try:
            return self[name]
        except KeyError:
            raise ParamError(f"unknown parameter {name!r}") from None

    def defaults(self) -> dict[str, Any]:
        return {n: p.default for n, p in self._params.items() if p.kind != "trigger"}


class Snapshot(Mapping[str, Any]):
    """An immutable view of every value, taken once per frame."""

    __slots__ = ("_values", "t", "version")

    def __init__(self, values: dict[str, Any], version: int, t: float) -> None:
        self._values = values
        self.version = version
        self.t = t

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __setitem__(self, name: str, value: Any) -> None:
        raise TypeError("a Snapshot is read-only; change values through the ParamStore")


@dataclass
class _Ramp:
    start: float
    target: float
    t0: float
    duration: float


Listener = Callable[[Param, Any, str], None]


class ParamStore:
    """Current values: set() from any thread (under a lock), snapshot() once per frame.

    Float changes glide when the parameter has smoothing or a ramp is asked for (preset morphs); the
    target is what listeners (OSC feedback) hear about, at once. Triggers are queued for update().
    """

    def __init__(self, registry: Registry, values: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, Any] = registry.defaults()
        self._targets: dict[str, Any] = dict(self._values)
        self._ramps: dict[str, _Ramp] = {}
        self._triggers: list[tuple[str, Any]] = []
        self._listeners: list[Listener] = []
        self._version = 0
        self.changes = 0
        self._snapshot = Snapshot(dict(self._values), 0, clock())
        for name, value in (values or {}).items():
            self.set(name, value, source="config", ramp_s=0.0)
        self.publish()


    def use_clock(self, clock: Callable[[], float]) -> None:
        """Run ramps and smoothing on another clock (a lockstep replay's frame clock) from now on."""
        self._clock = clock
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set(self, name: str, value: Any, source: str = "api", ramp_s: float | None = None) -> Any:
        """Coerce, clamp and store a value; returns what was stored. Raises ParamError."""
        p = self.registry.lookup(name)
        v = p.coerce(value)
        if p.kind == "trigger":
            if v:
                with self._lock:
                    self._triggers.append((p.name, value))
            return v
        ramp = p.smoothing_s if ramp_s is None else ramp_s
        with self._lock:
            if self._targets.get(p.name) == v and p.name not in self._ramps:
                return v
            self._targets[p.name] = v
            if p.kind == "float" and ramp > 0:
                self._ramps[p.name] = _Ramp(float(self._values[p.name]), v, self._clock(), ramp)
            else:
                self._ramps.pop(p.name, None)
                self._values[p.name] = v
            self._version += 1
            self.changes += 1
        for listener in self._listeners:
            listener(p, v, source)
        return v

    def get(self, name: str) -> Any:
        """The value as it is now (mid-ramp values included)."""
        with self._lock:
            return self._values[self.registry.lookup(name).name]

    def target(self, name: str) -> Any:
        """Where a value is heading: what a controller set, before smoothing."""
        with self._lock:
            return self._targets[self.registry.lookup(name).name]

    def targets(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._targets)

    def drain_triggers(self) -> list[tuple[str, Any]]:
        with self._lock:
            out, self._triggers = self._triggers, []
        return out

    def publish(self) -> Snapshot:
        """Advance ramps to now and publish the next frame's snapshot."""
        now = self._clock()
        with self._lock:
            for name, r in list(self._ramps.items()):
                a = 1.0 if r.duration <= 0 else min(1.0, (now - r.t0) / r.duration)
                self._values[name] = r.start + (r.target - r.start) * a
                if a >= 1.0:
                    self._values[name] = r.target
                    del self._ramps[name]
            self._snapshot = Snapshot(dict(self._values), self._version, now)
        return self._snapshot

    def snapshot(self) -> Snapshot:
        """The snapshot published last; safe to read from any thread."""
        return self._snapshot
