"""The frame-budget governor: the show measures itself while it plays and, when its frames no longer fit
the source's rate, gives up known pieces of work in a fixed order until they do, and takes them back
when there is room again. It never does so silently: its `status()` feeds the health counters (stats
JSON, OSC /status, the web status page), its `hud_lines()` the HUD, and `check` reads the verdict it
leaves in the state folder.

What it reads: the presented frames and their capture->present latency (the show's Stats), once a window.
A window is *late* when fewer than 95 % of the source's frames were presented or the latency's p95
passed two frame periods (the budget); it has *room* for the last step given up when at least 97 % were
presented and the p95 times what that step saved (the median latency of the late window before it over
that of the window after it) stays under ROOM_P95 of the budget. Hysteresis: one step down after a late
window; one step back only after `hold` windows in a row with room, and a step back that is late again
within BOUNCE_WINDOWS gives that step up again and doubles `hold` (up to HOLD_MAX_WINDOWS), so a show on
the edge settles instead of see-sawing. Every change starts a fresh window: the effect of a step is
measured before the next. Until the first window that is not late the windows last a third of a second
and a window far behind takes two steps, so a show finds its steps in its first second or two. A start on
the same CPU at the same rate begins where the last run settled (the verdict it leaves in the state
folder); a first start where the model's trial inference at load and the warm-up's segmentation took more
than TRIAL_SHARE of a frame interval begins with the model on every 2nd frame (start). Either is taken
back like any other step when there is room.

The steps, cheapest loss of picture first (STEPS): segmentation every 2nd frame (the mask of the frame
before is reused), the present pass at 3/4 of the screen's resolution (scaled up by a blit), every 3rd
frame, then at 1/2, and last the model every 2nd, then 3rd frame (the frames between keep the camera
and the mask fresh and glide the model's last picture on through the card's output smoothing, and the
model paints beside them on a lane of its own, so no frame waits for it: show/workers.py). Each knob can be pinned
in the show file ([governor] seg_every, render_scale, model_every), and its floor declared
(seg_every_max, render_scale_min, model_every_max); segmentation and the model are never turned off.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

log = logging.getLogger("installation.governor")

WINDOW_S = 1.0  # one judgement a second: 30 frames at 30 fps, enough for a p95
# from the start until the first window that is not late, windows of a third of a second, and two steps at
# once when far behind: a show that does not fit this machine finds its steps in its first second or two,
# before its late frames weigh on the run (a step taken on too few frames is taken back like any other)
FIRST_WINDOW_S = 1 / 3
FAR_FPS = 0.85  # presented below this share of the source's rate...
FAR_P95 = 1.5  # ...or the p95 above this share of the budget: far behind, two steps
WARMUP_S = 0.25  # the first frames (caches, the first frames of each thread) are not judged; the shaders
# and the segmenter were warmed before the source started (Show.warm_up), so a quarter second is enough
LATE_FPS = 0.95  # presented below this share of the source's rate: late
SOURCE_SHORT = 0.5  # the source itself delivered below this share of its rate: the window is not judged
ROOM_FPS = 0.97  # at or above this share...
ROOM_P95 = 0.8  # ...with the p95, times what the last step saved, under this share of the budget: room
BUDGET_FRAMES = 2.0  # the latency budget, capture -> present, in frame periods
HOLD_WINDOWS = 4  # windows with room in a row before a step back
HOLD_MAX_WINDOWS = 64
BOUNCE_WINDOWS = 3  # late this soon after a step back: it did not fit, wait twice as long next time
VERDICT_FILE = "governor.json"
RESUMED = "where the last run on this CPU settled: "  # before a resumed step's own reason
# a first run on a CPU where the model's trial inference (at load, on every core) and a segmentation (the
# warm-up's) took more than this share of a frame interval begins with the model on every 2nd frame:
# finding it a window at a time, after the four cheaper steps, cost the first second's frames
# (docs/performance.md)
TRIAL_SHARE = 0.5
FIRST_GUESS = ("model_every", 2)  # the step such a first run begins with

# (knob, level) in the order they are given up; taken back in reverse
STEPS: tuple[tuple[str, float], ...] = (("seg_every", 2), ("render_scale", 0.75), ("seg_every", 3),
                                        ("render_scale", 0.5), ("model_every", 2), ("model_every", 3))


# the pinnable knobs: (lowest, highest, what a value is)
PINS = {"seg_every": (1, 30, "a segmentation interval in frames"),
        "render_scale": (0.25, 1.0, "a share of the screen's resolution"),
        "model_every": (1, 4, "an inference interval in frames")}
INTERVALS = ("seg_every", "model_every")  # knobs where a larger value is cheaper


class GovernorConfig(BaseModel):
    """[governor] in a show file; `governor = "off"` is short for `[governor] mode = "off"`."""

    model_config = ConfigDict(extra="forbid")

    # "auto": adapt to the machine; "off": play exactly what the file says (pinned knobs still apply)
    mode: Literal["auto", "off"] = "auto"
    # segment every Nth frame at least (the others reuse the last mask); "auto": the governor's choice
    seg_every: str | int = "auto"
    seg_every_max: int = Field(3, ge=1, le=30)  # the sparsest segmentation the governor may choose
    # the present pass's resolution as a share of the screen's; "auto": the governor's choice
    render_scale: str | float = "auto"
    render_scale_min: float = Field(0.5, ge=0.25, le=1.0)  # the lowest the governor may choose
    # run the model on every Nth frame at least (the frames between glide its last picture through the
    # card's output smoothing, with their own camera picture and mask); "auto": the governor's choice
    model_every: str | int = "auto"
    model_every_max: int = Field(3, ge=1, le=4)  # the sparsest inference the governor may choose

    @field_validator("seg_every", "render_scale", "model_every")
    @classmethod
    def _auto_or_in_range(cls, v: str | float, info: ValidationInfo) -> str | float:
        lo, hi, what = PINS[info.field_name or ""]
        if v != "auto" and (isinstance(v, (str, bool)) or not lo <= v <= hi):
            raise ValueError(f"{v!r} is not {what} (expected \"auto\", or from {lo:g} to {hi:g})")
        return v


@dataclass(frozen=True)
class Settings:
    """What the show plays with now: read by the stages each frame, replaced whole on a change."""

    seg_every: int = 1  # at least this; the live seg/every may ask for more
    render_scale: float = 1.0
    model_every: int = 1  # the model runs on every Nth frame

    def given_up(self) -> list[str]:
        out = []
        if self.seg_every > 1:
            out.append(describe_step("seg_every", self.seg_every))
        if self.render_scale < 1.0:
            out.append(describe_step("render_scale", self.render_scale))
        if self.model_every > 1:
            out.append(describe_step("model_every", self.model_every))
        return out


def pinned_settings(cfg: GovernorConfig) -> Settings:
    """The settings the file asks for: its pins, full quality elsewhere (what `off` plays)."""
    return Settings(seg_every=1 if cfg.seg_every == "auto" else int(cfg.seg_every),
                    render_scale=1.0 if cfg.render_scale == "auto" else float(cfg.render_scale),
                    model_every=1 if cfg.model_every == "auto" else int(cfg.model_every))


def allowed_steps(cfg: GovernorConfig, segmenting: bool) -> list[tuple[str, float]]:
    """STEPS less the pinned knobs, those beyond the declared floors, and segmentation's where the show
    does not segment."""
    out = []
    for knob, level in STEPS:
        if knob == "seg_every" and (not segmenting or cfg.seg_every != "auto" or level > cfg.seg_every_max):
            continue
        if knob == "render_scale" and (cfg.render_scale != "auto" or level < cfg.render_scale_min):
            continue
        if knob == "model_every" and (cfg.model_every != "auto" or level > cfg.model_every_max):
            continue
        out.append((knob, level))
    return out


def describe_step(knob: str, level: float) -> str:
    if knob == "seg_every":
        return f"segmentation every {int(level)} frames"
    if knob == "model_every":
        return f"model every {int(level)} frames"
    return f"render scale {level:g}"


@dataclass
class Window:
    """One window's figures."""

    fps: float
    p95_ms: float
    frames: int
    p50_ms: float = float("nan")
    over: int = 0  # frames whose latency passed the budget

    def over_budget(self) -> bool:
        """The p95 passed the budget, and by more than one frame (one stall in a short window is not late)."""
        return self.over >= 2 and self.over > 0.05 * self.frames

    def words(self, rate: float) -> str:
        p95 = f"p95 {self.p95_ms:.0f} ms" if np.isfinite(self.p95_ms) else "no latency yet"
        return f"{self.fps:.1f} fps of {rate:g}, {p95}"


@dataclass
class Taken:
    """A step given up: why, and the latency around it (what taking it back would cost again)."""

    knob: str
    level: float
    why: str
    p50_before: float
    p50_after: float = float("nan")  # the first judged window after it
    # a step taken before any window (Governor.start): what it is thought to save a frame, in ms; its
    # p50_before is then the first judged window's median plus this
    saves_ms: float = 0.0
    resumed: bool = False  # from the last run's verdict (Governor.resume): said with RESUMED before its why

    def said(self) -> str:
        """Its reason as the HUD and the status say it; the verdict keeps `why` itself."""
        return RESUMED + self.why if self.resumed else self.why

    def cost(self) -> float:
        """How much longer the frames took with this step not given up: the late window's median latency
        over the next one's (at least 1). A ratio, not a difference, so a step taken while another program
        loaded the machine is not judged by that load's milliseconds once it has gone; medians, so one
        stalled frame in a short window does not make the step look dearer than it is."""
        if not (np.isfinite(self.p50_before) and np.isfinite(self.p50_after)) or self.p50_after <= 0:
            return 1.0
        return max(1.0, self.p50_before / self.p50_after)


class Governor:
    """Owned by the Show; handed the source's rate and whether the show segments, and each frame the
    show's Stats (update). `settings` is what the stages read."""

    def __init__(self, cfg: GovernorConfig, rate: float | None, segmenting: bool,
                 lockstep: bool = False) -> None:
        self.cfg = cfg
        self.rate = rate
        self.settings = pinned_settings(cfg)
        self.steps = allowed_steps(cfg, segmenting)
        # why it stays out of the way, when it does
        self.off_why = ("off in the show file" if cfg.mode == "off" else
                        "--lockstep processes every frame" if lockstep else
                        "the source is read as fast as the loop can: no rate to fit" if not rate else "")
        self.active = not self.off_why
        self.taken: list[Taken] = []  # steps given up, oldest first
        self.budget_ms = BUDGET_FRAMES * 1000.0 / rate if rate else float("inf")
        self.hold = HOLD_WINDOWS
        self.changes = 0
        self.ups = 0
        self.downs = 0
        self.bounces = 0
        self.cheapest_too_slow = False
        self.last: Window | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=32)
        self._t0: float | None = None
        self._n0 = 0
        self._room_run = 0
        self._windows = 0
        self._last_up_window = -1000
        self._t_start: float | None = None
        self._s0: int | None = None  # the source's count of pictures delivered at the window's start
        self._warned = False
        self._anchor: float | None = None  # when the last frame judged was presented
        self._finding = True  # short windows, two steps when far behind, until one is not late
        self._given_back: Taken | None = None  # the last step taken back
        self._resumed = False  # began where the last run on this CPU settled (resume)

    # ---- each frame (main thread) ------------------------------------------------------------------
    def update(self, stats: Any, now: float | None = None, source_frames: int | None = None) -> None:
        """Judge the window once it is WINDOW_S long; cheap otherwise. `source_frames`: how many pictures the
        source has delivered so far, where it counts them: a window in which the source itself fell short
        (a camera unplugged, stalled or reconnecting) is not judged, since no setting of this machine's
        would bring frames that never came."""
        if not self.active:
            return
        now = time.monotonic() if now is None else now
        n = stats.counters["frames_presented"]
        if self._t0 is None:
            self._t0, self._n0, self._t_start, self._s0 = now, n, now, source_frames
            return
        dt = now - self._t0
        if dt < (WARMUP_S if not self._windows else FIRST_WINDOW_S if self._finding else WINDOW_S):
            return
        frames = n - self._n0
        lat = list(stats.latency_ms)[-frames:] if frames > 0 else []
        p50, p95 = np.percentile(lat, (50, 95)) if lat else (float("nan"), float("nan"))
        over = sum(x > self.budget_ms for x in lat)
        w = Window(self._rate_since(stats, now, frames), float(p95), frames, float(p50), over)
        source_short = (source_frames is not None and self._s0 is not None
                        and source_frames - self._s0 < SOURCE_SHORT * self.rate * dt)  # type: ignore[operator]
        self._t0, self._n0, self._s0 = now, n, source_frames
        self._windows += 1
        if self._windows == 1 or source_short:
            return  # the warm-up, or a window the source itself left short
        self.last = w
        self.judge(w, now)

    def _rate_since(self, stats: Any, now: float, frames: int) -> float:
        """Frames a second since the last window, from the present times: the frames over the time from the
        last present before the window to the last in it, so a steady 30 fps reads 30 whichever way a short
        window's edges fall (9, 10 or 11 frames in a third of a second). A stall at the end is the next
        window's first interval."""
        times = stats.present_times()[-frames:] if frames > 0 else []
        anchor, self._anchor = self._anchor, times[-1] if times else self._anchor
        if anchor is None or not times or times[-1] <= anchor:
            return frames / max(now - (self._t0 or now), 1e-9)
        return len(times) / (times[-1] - anchor)

    def judge(self, w: Window, now: float) -> None:
        """One window's verdict: a step down, a step back, or nothing."""
        assert self.rate
        for t in self.taken:
            if t.saves_ms and not np.isfinite(t.p50_after) and np.isfinite(w.p50_ms):
                t.p50_after, t.p50_before = w.p50_ms, w.p50_ms + t.saves_ms
        pending = [t for t in self.taken if np.isfinite(t.p50_before) and not np.isfinite(t.p50_after)]
        if pending and np.isfinite(w.p50_ms) and w.p50_ms > 0:  # what the last change bought, shared out
            share = max(1.0, pending[0].p50_before / w.p50_ms) ** (1.0 / len(pending))  # between its steps
            for t in pending:
                t.p50_after = t.p50_before / share
        late = w.fps < LATE_FPS * self.rate or w.over_budget()
        again = self.taken[-1].cost() if self.taken else 1.0  # taking the last step back costs this
        room = (w.fps >= ROOM_FPS * self.rate and np.isfinite(w.p95_ms)
                and w.p95_ms * again < ROOM_P95 * self.budget_ms)
        finding, self._finding = self._finding, self._finding and late
        if late:
            self._room_run = 0
            bounced = self._windows - self._last_up_window <= BOUNCE_WINDOWS
            if bounced:
                self.bounces += 1
                self.hold = min(self.hold * 2, HOLD_MAX_WINDOWS)  # that step back did not fit
            far = (w.fps < FAR_FPS * self.rate
                   or (w.over_budget() and w.p95_ms > FAR_P95 * self.budget_ms))
            for _ in range(2 if finding and far else 1):
                self.step_down(w, now, again=self._given_back if bounced else None)
        elif room:
            self.cheapest_too_slow = False
            self._room_run += 1
            if self.taken and self._room_run >= self.hold:
                self.step_up(w, now)
        else:
            self.cheapest_too_slow = False
            self._room_run = 0

    def step_down(self, w: Window, now: float, again: Taken | None = None) -> None:
        """Give up the first step of the order not given up yet; after a step back that did not fit
        (`again`), that step once more."""
        done = {(t.knob, t.level) for t in self.taken}
        todo = [s for s in self.steps if s not in done]
        if again is not None and (again.knob, again.level) in todo:
            todo.insert(0, (again.knob, again.level))
        why = f"late: {w.words(self.rate or 0)} (budget {self.budget_ms:.0f} ms)"
        if not todo:
            if not self._warned:  # once a run: the HUD, /status and the stats keep saying it
                log.warning("governor: even the cheapest settings do not fit this machine: %s", why)
                self._warned = True
            self.cheapest_too_slow = True
            return
        knob, level = todo[0]
        self.taken.append(Taken(knob, level, why, w.p50_ms))
        self.downs += 1
        self._apply(now, "down", knob, level, why, w)

    def step_up(self, w: Window, now: float) -> None:
        step = self._given_back = self.taken.pop()
        knob, level = step.knob, step.level
        self.ups += 1
        self._room_run = 0
        self._last_up_window = self._windows
        why = f"room: {w.words(self.rate or 0)}"
        self._apply(now, "up", knob, level, why, w)

    def _settings_of(self) -> Settings:
        """Settings from the steps still taken (each knob at its most given-up level)."""
        s = pinned_settings(self.cfg)
        for t in self.taken:
            k, v = t.knob, t.level
            s = replace(s, **{k: type(getattr(s, k))(v)}) if _cheaper(k, v, getattr(s, k)) else s
        return s

    def _apply(self, now: float, direction: str, knob: str, level: float, why: str,
               w: Window | None = None) -> None:
        self.settings = self._settings_of()
        self.changes += direction not in ("resume", "start")
        t = round(now - (self._t_start or now), 2)
        self.history.append({"t_s": t, "dir": direction, "step": describe_step(knob, level), "why": why,
                             "fps": None if w is None else round(w.fps, 2),
                             "p95_ms": None if w is None else _finite(w.p95_ms)})
        if direction in ("resume", "start"):
            self.history[-1]["step"] = ", ".join(self.settings.given_up())
            log.info("governor: starts %s", why if direction == "resume" else
                     f"with {describe_step(knob, level)}: {why}")
            return
        log.info("governor %s at %.1f s: %s (%s)", "gave up" if direction == "down" else "took back",
                 t, describe_step(knob, level), why)

    # ---- what it says ------------------------------------------------------------------------------
    def _said(self) -> tuple[str, str]:
        """What is given up (or why nothing is), and why ("" where there is nothing more to say)."""
        given = self.settings.given_up()
        if not self.active:
            return f"governor: {self.off_why}", (f"pinned: {', '.join(given)}" if given else "")
        if self.cheapest_too_slow and self.last is not None:
            return (f"governor: even the cheapest settings do not fit: {self.last.words(self.rate or 0)}"
                    + (f" ({', '.join(given)})" if given else "")), ""
        if given and self.taken:
            return f"governor: gave up {', '.join(given)}", self.taken[-1].said()
        return "governor: nothing given up" + (f" ({self.last.words(self.rate or 0)})" if self.last else ""), ""

    def line(self) -> str:
        """One line: what is given up and why, or why nothing is."""
        head, why = self._said()
        return f"{head}; {why}" if why else head

    def hud_lines(self) -> list[str]:
        """What was given up on one line and why on the next: the HUD cuts a line at its width."""
        head, why = self._said()
        return [("! " if self.cheapest_too_slow else "") + head] + ([f"  {why}"] if why else [])

    def status(self) -> dict[str, Any]:
        """For the health counters (stats JSON, OSC /status, web status)."""
        return {
            "mode": self.cfg.mode if self.active or self.cfg.mode == "off" else "idle",
            "why_idle": self.off_why or None,
            "given_up": self.settings.given_up(),
            "settings": {"seg_every": self.settings.seg_every, "render_scale": self.settings.render_scale,
                         "model_every": self.settings.model_every},
            "why": self.taken[-1].said() if self.taken else None,
            "cheapest_too_slow": self.cheapest_too_slow,
            "line": self.line(),
            "budget_ms": round(self.budget_ms, 1) if self.rate else None,
            "last_window": None if self.last is None else {
                "fps": round(self.last.fps, 2),
                "p95_ms": round(self.last.p95_ms, 1) if np.isfinite(self.last.p95_ms) else None,
                "frames": self.last.frames},
            "changes": self.changes, "downs": self.downs, "ups": self.ups, "bounces": self.bounces,
            "hold_windows": self.hold,
            "history": list(self.history),
        }

    # ---- the verdict: left in the state folder, read by `check` and the next start ----------------
    def save(self, folder: Path | None, cpu: str) -> None:
        """Leave what it found on this machine in the state folder: `check` says it, and the next start on
        the same CPU at the same rate begins from it (resume)."""
        if folder is None or not self.active or self.last is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = {"cpu": cpu, "rate": self.rate, "t": round(time.time()),
                    **{k: v for k, v in self.status().items() if k != "history"},
                    "taken": [{"knob": t.knob, "level": t.level, "why": t.why, "p50_before": _finite(t.p50_before),
                               "p50_after": _finite(t.p50_after)} for t in self.taken]}
            (folder / VERDICT_FILE).write_text(json.dumps(data, indent=2) + "\n")
        except OSError as e:
            log.warning("governor: can't write its verdict in %s: %s", folder, e)

    def resume(self, folder: Path | None, cpu: str) -> None:
        """Begin where the last run on this CPU, at this rate, settled: a show that starts late every day
        would otherwise spend its first seconds finding the same steps again. Its steps are taken back as
        any other when there is room."""
        path = folder / VERDICT_FILE if folder is not None else None
        if not self.active or path is None or not path.is_file():
            return
        try:
            v = json.loads(path.read_text())
            if v.get("cpu") != cpu or v.get("rate") != self.rate:
                return
            steps = [Taken(str(t["knob"]), float(t["level"]), _first_why(str(t["why"])),
                           float(t.get("p50_before") or "nan"), float(t.get("p50_after") or "nan"), resumed=True)
                     for t in v["taken"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("governor: its last verdict %s is unreadable (%s): starting from the show file", path, e)
            return
        allowed = set(self.steps)
        self.taken = [t for t in steps if (t.knob, t.level) in allowed]
        self._resumed = True  # nothing given up is a verdict too: no first guess over it (start)
        if self.taken:
            self._apply(0.0, "resume", self.taken[-1].knob, self.taken[-1].level,
                        f"where the last run on this CPU settled ({', '.join(self._settings_of().given_up())})")

    def start(self, trial_ms: float | None, seg_ms: float = 0.0) -> None:
        """A run with nothing to resume: where the model's trial inference and a segmentation (0 where the
        show does not segment) took more than TRIAL_SHARE of a frame interval, begin with the model on
        every 2nd frame (the frames between glide, and the model paints beside them: show/workers.py).
        Taken back like any other step when there is room; a CPU where they fit, or where the last run
        settled with nothing given up, begins with nothing given up."""
        if (not self.active or self._resumed or self.taken or trial_ms is None or not self.rate
                or FIRST_GUESS not in self.steps or (trial_ms + seg_ms) * self.rate / 1000.0 <= TRIAL_SHARE):
            return
        seg = f" and a segmentation {seg_ms:.1f} ms" if seg_ms else ""
        why = (f"the model's trial inference took {trial_ms:.1f} ms on every core{seg}, over "
               f"{TRIAL_SHARE:.0%} of a frame at {self.rate:g} fps")
        # without it every frame waits for an inference: about the trial's time added to each frame's latency
        knob, level = FIRST_GUESS
        self.taken = [Taken(knob, float(level), why, float("nan"), saves_ms=trial_ms)]
        self._apply(0.0, "start", knob, level, why)


def _first_why(why: str) -> str:
    """A step's reason as first given. Verdicts saved before Taken.resumed existed carry RESUMED before it,
    once for each start of a show restarted every day: they are read as if saved bare."""
    while why.startswith(RESUMED):
        why = why[len(RESUMED):]
    return why


def _finite(x: float) -> float | None:
    return round(x, 2) if np.isfinite(x) else None


def _cheaper(knob: str, new: float, old: float) -> bool:
    return new > old if knob in INTERVALS else new < old


def check_lines(cfg: GovernorConfig, segmenting: bool, folder: Path | None, cpu: str) -> list[str]:
    """What `check` says of the governor: what it may give up, in order, and its last verdict on this CPU."""
    pins = pinned_settings(cfg).given_up()
    pinned = f"; pinned: {', '.join(pins)}" if pins else ""
    if cfg.mode == "off":
        lines = [f"governor: off (plays what the file says{pinned})"]
    else:
        steps = allowed_steps(cfg, segmenting)
        may = ", then ".join(describe_step(k, v) for k, v in steps) or "nothing (every knob pinned)"
        lines = [f"governor: auto; when frames do not fit the source's rate it gives up, in order: {may}{pinned}"]
        if FIRST_GUESS in steps:
            lines.append(f"governor: a run with no verdict of this CPU's to resume begins with the model on every "
                         f"2nd frame where its trial inference and a segmentation take over {TRIAL_SHARE:.0%} of a "
                         "frame interval")
    path = folder / VERDICT_FILE if folder is not None else None
    if path is None or not path.is_file():
        return lines
    try:
        v = json.loads(path.read_text())
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(v["t"]))
        here = "this CPU" if v.get("cpu") == cpu else f"another CPU ({v.get('cpu')})"
        lines.append(f"governor, last run ({when}, {here}): {v['line'].removeprefix('governor: ')}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        lines.append(f"governor: its last verdict {path} is unreadable ({e})")
    return lines
