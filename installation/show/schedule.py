"""Opening hours and looks: what the wall shows by weekday and time of day, and an attract look once the
room has been empty for a while.

A look is a set of parameter values laid over the live ones (snapshot overrides), so an operator's
tuning is never overwritten: when the look ends, the live values show again. Looks fade in and out.
The decision is pure logic (`Schedule.look_at`, `choose_look`), tested with fixed datetimes; the
`ScheduleControl` feeds it the clock, the room's emptiness and the source's state once a frame.

Emptiness comes from the person mask's area when segmentation runs, else from how much a small
thumbnail of the camera picture changed over the last half second.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from installation.core.params import ParamStore
    from installation.core.timing import Stats
    from installation.show.workers import Result


class Stage(Protocol):
    """What a look reads and changes of the show it is a part of (show.loop.Show is one)."""

    store: ParamStore

    @property
    def stats(self) -> Stats: ...

    @property
    def source(self) -> Any: ...

    @property
    def last_result(self) -> Result | None: ...

    def lay_over(self, owner: str, values: dict[str, Any]) -> None: ...

log = logging.getLogger("installation.schedule")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# "on" shows the live picture; the others are starting points a show can redefine in [schedule.looks].
BUILTIN_LOOKS: dict[str, dict[str, Any]] = {
    "on": {},
    "blackout": {"show/blackout": True},
    "freeze": {"show/freeze": True},
    "idle": {"colour/brightness": 0.35, "colour/saturation": 0.5},
    "attract": {"mix/feedback": 0.85, "colour/saturation": 1.5},
}


# ---- parsing ------------------------------------------------------------------------------------

def parse_days(spec: str | list[str]) -> frozenset[int]:
    """Weekdays (0 = Monday) from "mon-fri", "sat,sun", "daily", ["tue", "thu"]; ranges may wrap ("fri-mon")."""
    items = spec if isinstance(spec, list) else re.split(r"[,\s]+", spec.strip())
    out: set[int] = set()
    for raw in items:
        item = raw.strip().lower()
        if not item:
            continue
        if item in ("daily", "all", "*", "every day"):
            out.update(range(7))
            continue
        a, sep, b = item.partition("-")
        try:
            i = _day(a)
            j = _day(b) if sep else i
        except ValueError:
            raise ValueError(f"{raw!r} is not a day (expected mon, tue, ... sun, a range like mon-fri, "
                             "or daily)") from None
        out.update((i + k) % 7 for k in range((j - i) % 7 + 1))
    if not out:
        raise ValueError("no days given (expected mon, tue, ... sun, a range like mon-fri, or daily)")
    return frozenset(out)


def _day(name: str) -> int:
    """0..6 from "mon" or "monday"; ValueError otherwise."""
    name = name.strip()
    for i, d in enumerate(DAYS):
        full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")[i]
        if name in (d, full):
            return i
    raise ValueError(name)


def parse_time(s: str) -> int:
    """Minutes after midnight from "HH:MM"; "24:00" is the end of the day."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", s)
    if not m or int(m.group(2)) > 59 or int(m.group(1)) > 24 or (int(m.group(1)) == 24 and int(m.group(2))):
        raise ValueError(f"{s!r} is not a time of day (expected HH:MM, 00:00 to 24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


# ---- the show file's [schedule] -----------------------------------------------------------------

class HoursConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: str | list[str] = "daily"
    start: str = "00:00"
    end: str = "24:00"  # an end before the start runs past midnight into the next day
    look: str = "on"

    @field_validator("days")
    @classmethod
    def _days(cls, v: str | list[str]) -> str | list[str]:
        parse_days(v)
        return v

    @field_validator("start", "end")
    @classmethod
    def _time(cls, v: str) -> str:
        parse_time(v)
        return v


class ScheduleConfig(BaseModel):
    """[schedule]: by default the wall is always on, no attract look, the last picture kept when the
    camera goes."""

    model_config = ConfigDict(extra="forbid")

    hours: list[HoursConfig] = Field(default_factory=list)  # first match wins
    outside: str = "on"  # the look when no [[schedule.hours]] entry matches (e.g. "blackout" after closing)
    attract: str = "attract"
    attract_after_s: float = Field(0.0, ge=0)  # an empty room for this long -> the attract look; 0: never
    empty_by: Literal["auto", "mask", "motion"] = "auto"  # auto: the mask when segmentation runs
    empty_below: float = Field(0.01, ge=0, le=1)  # mask area / changed fraction under which nobody is there
    source_lost: str = "on"  # the look while the camera is gone ("on": keep the last picture)
    source_lost_after_s: float = Field(5.0, ge=0)
    fade_s: float = Field(2.0, ge=0, le=600)
    looks: dict[str, dict[str, Any]] = Field(default_factory=dict)  # name -> {param = value}

    def unknown_looks(self) -> list[tuple[str, str]]:
        """(key, name) of every look named but defined nowhere; load_show reports the first."""
        known = set(BUILTIN_LOOKS) | set(self.looks)
        named = [("outside", self.outside), ("attract", self.attract), ("source_lost", self.source_lost)]
        named += [(f"hours[{i}].look", h.look) for i, h in enumerate(self.hours)]
        return [(where, name) for where, name in named if name not in known]

    def known_looks(self) -> list[str]:
        return sorted(set(BUILTIN_LOOKS) | set(self.looks))

    def look_values(self) -> dict[str, dict[str, Any]]:
        return {**BUILTIN_LOOKS, **self.looks}


# ---- the decision (pure) ------------------------------------------------------------------------

@dataclass(frozen=True)
class Hours:
    days: frozenset[int]
    start: int  # minutes after midnight
    end: int
    look: str

    def covers(self, dt: datetime) -> bool:
        m = dt.hour * 60 + dt.minute
        day = dt.weekday()
        if self.start == self.end or (self.start == 0 and self.end == 24 * 60):
            return day in self.days
        if self.start < self.end:
            return day in self.days and self.start <= m < self.end
        # past midnight: the late part belongs to the day it started on
        return (day in self.days and m >= self.start) or ((day - 1) % 7 in self.days and m < self.end)


class Schedule:
    def __init__(self, hours: list[Hours], outside: str = "on") -> None:
        self.hours = hours
        self.outside = outside

    @classmethod
    def from_config(cls, cfg: ScheduleConfig) -> Schedule:
        return cls([Hours(parse_days(h.days), parse_time(h.start), parse_time(h.end), h.look) for h in cfg.hours],
                   cfg.outside)

    def look_at(self, dt: datetime) -> str:
        for h in self.hours:
            if h.covers(dt):
                return h.look
        return self.outside


def choose_look(hours_look: str, empty_for_s: float, source_lost_for_s: float, cfg: ScheduleConfig) -> tuple[str, str]:
    """(look, why). The opening hours come first; then a lost camera; then an empty room."""
    if hours_look != "on":
        return hours_look, "hours"
    if cfg.source_lost != "on" and source_lost_for_s >= max(cfg.source_lost_after_s, 1e-9):
        return cfg.source_lost, "source lost"
    if cfg.attract_after_s > 0 and empty_for_s >= cfg.attract_after_s:
        return cfg.attract, "empty room"
    return "on", "open"


# ---- is anyone there? ---------------------------------------------------------------------------

OBSERVE_EVERY_S = 0.1  # how often the attract look checks whether anyone is there


class Presence:
    """How long the room has been empty, from masks (person area) or pictures (change over ~0.5 s)."""

    THUMB = (48, 27)
    DIFF_LEVEL = 12  # grey levels of change that count as movement, above camera noise on a thumbnail

    def __init__(self, empty_below: float = 0.01, by: str = "auto", ref_every_s: float = 0.5,
                 t0: float | None = None) -> None:
        self.empty_below = empty_below
        self.by = by
        self.ref_every_s = ref_every_s
        self.t_seen = time.monotonic() if t0 is None else t0  # start as if someone just left
        self.activity = 0.0
        self._ref: np.ndarray | None = None
        self._t_ref = -1e9

    def observe(self, t: float, image: np.ndarray | None = None, mask: np.ndarray | None = None) -> float:
        """Feed one frame; returns its activity (person area, or the fraction of the picture that moved)."""
        if mask is not None and self.by in ("auto", "mask"):
            self.activity = float(np.mean(mask))
        elif image is not None and self.by in ("auto", "motion"):
            self.activity = self._motion(t, image)
        else:
            return self.activity
        if self.activity >= self.empty_below:
            self.t_seen = t
        return self.activity

    def _motion(self, t: float, image: np.ndarray) -> float:
        thumb = cv2.resize(image, self.THUMB, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY) if thumb.ndim == 3 else thumb
        grey = grey.astype(np.int16)
        if self._ref is None:
            self._ref, self._t_ref = grey, t
            return 0.0
        moved = float(np.mean(np.abs(grey - self._ref) > self.DIFF_LEVEL))
        if t - self._t_ref >= self.ref_every_s:
            self._ref, self._t_ref = grey, t
        return moved

    def empty_for(self, t: float) -> float:
        return max(0.0, t - self.t_seen)


# ---- looks laid over the live values -------------------------------------------------------------

def blend_looks(live: Mapping[str, Any], a: Mapping[str, Any], b: Mapping[str, Any], w: float) -> dict[str, Any]:
    """Overrides while fading from `a` (the overrides in force when the fade began) to look `b`, at
    weight w in [0, 1], over the live values.

    Floats glide. Other values (a blackout, a freeze) switch on at the end of a fade into them and off
    at once when leaving, so a blackout fades through brightness: down to black, then the flag.
    """
    b = dict(b)
    if b.get("show/blackout"):
        b["colour/brightness"] = 0.0
    if w >= 1.0:
        return {k: v for k, v in b.items() if k in live}
    out: dict[str, Any] = {}
    for name in a.keys() | b.keys():
        if name not in live:
            continue
        if isinstance(live[name], float):
            va, vb = float(a.get(name, live[name])), float(b.get(name, live[name]))
            out[name] = va + (vb - va) * w
        elif name in a and name in b:
            out[name] = a[name]
    return out


class ScheduleControl:
    """A show control: decides the look each frame and lays it over the snapshot (show.overrides)."""

    def __init__(self, cfg: ScheduleConfig, clock: Callable[[], datetime] = datetime.now) -> None:
        self.cfg = cfg
        self.schedule = Schedule.from_config(cfg)
        self.looks = cfg.look_values()
        self.clock = clock
        self.presence = Presence(cfg.empty_below, cfg.empty_by)
        self.look = "on"
        self.why = "open"
        self._from: dict[str, Any] = {}
        self._t_switch = -1e9
        self._seen: Any = None
        self._t_observed = -1e9
        self._t_lost: float | None = None
        self.changes = 0

    def update(self, show: Stage) -> None:
        t = time.monotonic()
        res = getattr(show, "last_result", None)
        # a room empties over seconds: looking ten times a second is plenty, and at GPU frame rates a
        # look at every frame (a resize of the camera picture) cost a third of the main thread
        if (self.cfg.attract_after_s > 0 and res is not None and res is not self._seen
                and t - self._t_observed >= OBSERVE_EVERY_S):
            self._seen = res
            self._t_observed = t
            self.presence.observe(t, res.layers.camera, res.layers.mask)
        src = show.source
        if src is not None and not getattr(src, "connected", True):
            self._t_lost = self._t_lost if self._t_lost is not None else t
            self.presence.t_seen = t  # a blind camera can't say the room is empty: no attract look
        else:
            self._t_lost = None
        lost_for = t - self._t_lost if self._t_lost is not None else 0.0
        look, why = choose_look(self.schedule.look_at(self.clock()), self.presence.empty_for(t), lost_for, self.cfg)
        live = show.store.snapshot()
        if look != self.look:
            self._from = self.overrides(live, t)  # start from wherever the last fade had got to
            self._t_switch = t
            log.info("look: %s (%s)", look, why)
            self.look, self.why = look, why
            self.changes += 1
            show.stats.count("look_changes")
        values = self.overrides(live, t)
        show.lay_over("schedule", values)

    def overrides(self, live: Mapping[str, Any], t: float) -> dict[str, Any]:
        w = 1.0 if self.cfg.fade_s <= 0 else min(1.0, (t - self._t_switch) / self.cfg.fade_s)
        return blend_looks(live, self._from, self.looks.get(self.look, {}), w)

    def hud(self, show: Stage) -> list[str]:
        t = time.monotonic()
        if self.look != "on":
            return [f"look: {self.look} ({self.why})"]
        if self.cfg.attract_after_s > 0:
            left = self.cfg.attract_after_s - self.presence.empty_for(t)
            return [f"room: activity {self.presence.activity:.3f}, attract in {max(left, 0):.0f} s"]
        return []

    def close(self) -> None:
        pass
