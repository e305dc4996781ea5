"""Opening hours, looks and the empty-room check: pure logic with fixed datetimes and fixed pictures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import small_show

from installation.app import RunOptions, Show, default_registry, load_show
from installation.media.sources import BaseReader, Reconnecting
from installation.show.options import ControlOptions
from installation.show.schedule import (
    BUILTIN_LOOKS,
    Hours,
    Presence,
    Schedule,
    ScheduleConfig,
    ScheduleControl,
    blend_looks,
    choose_look,
    parse_days,
    parse_time,
)

# 2026-11-23 is a Monday
MON, TUE, WED, FRI, SAT, SUN = 23, 24, 25, 27, 28, 29


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm)


def test_fixed_dates_are_the_weekdays_named():
    assert [at(d, 12).strftime("%a") for d in (MON, TUE, FRI, SAT, SUN)] == ["Mon", "Tue", "Fri", "Sat", "Sun"]


@pytest.mark.parametrize(("spec", "days"), [
    ("mon-fri", {0, 1, 2, 3, 4}), ("sat,sun", {5, 6}), ("daily", set(range(7))), (["tue", "thu"], {1, 3}),
    ("fri-mon", {4, 5, 6, 0}), ("Monday", {0}), ("sun", {6}),
])
def test_days(spec, days):
    assert parse_days(spec) == frozenset(days)


@pytest.mark.parametrize("bad", ["funday", "mon-xyz", "", "1-5"])
def test_bad_days(bad):
    with pytest.raises(ValueError, match="expected"):
        parse_days(bad)


def test_times():
    assert parse_time("00:00") == 0
    assert parse_time("9:30") == 570
    assert parse_time("24:00") == 1440
    for bad in ("25:00", "12:60", "24:01", "noon", "1230"):
        with pytest.raises(ValueError):
            parse_time(bad)


def gallery() -> Schedule:
    """Tue-Sun 10-18, late opening Friday until 22:00, a club night Saturday 22:00-02:00, else dark."""
    return Schedule([
        Hours(parse_days("fri"), parse_time("10:00"), parse_time("22:00"), "on"),
        Hours(parse_days("tue-sun"), parse_time("10:00"), parse_time("18:00"), "on"),
        Hours(parse_days("sat"), parse_time("22:00"), parse_time("02:00"), "attract"),
        Hours(parse_days("tue-sun"), parse_time("09:30"), parse_time("10:00"), "idle"),
    ], outside="blackout")


@pytest.mark.parametrize(("when", "look"), [
    (at(MON, 12), "blackout"),  # closed on Mondays
    (at(TUE, 9, 45), "idle"),  # warming up before opening
    (at(TUE, 10), "on"),  # the start is inclusive
    (at(TUE, 17, 59), "on"),
    (at(TUE, 18), "blackout"),  # the end is exclusive
    (at(FRI, 21, 30), "on"),  # late opening: the first matching entry wins
    (at(SAT, 21, 30), "blackout"),
    (at(SAT, 23), "attract"),
    (at(SUN, 1, 59), "attract"),  # past midnight belongs to the night that started on Saturday
    (at(SUN, 2), "blackout"),
    (at(MON, 1), "blackout"),  # Sunday night has no late session
])
def test_opening_hours(when, look):
    assert gallery().look_at(when) == look


def test_whole_day_entry_and_no_hours():
    assert Schedule([Hours(parse_days("sun"), 0, 1440, "idle")], "on").look_at(at(SUN, 3)) == "idle"
    assert Schedule([], "on").look_at(at(MON, 3)) == "on"


def test_from_config_reads_the_show_table():
    cfg = ScheduleConfig.model_validate({"outside": "blackout", "hours": [
        {"days": "mon-fri", "start": "08:00", "end": "20:00"}]})
    s = Schedule.from_config(cfg)
    assert s.look_at(at(TUE, 8)) == "on"
    assert s.look_at(at(SAT, 12)) == "blackout"


def test_choose_look_priorities():
    cfg = ScheduleConfig(attract_after_s=60, source_lost="idle", source_lost_after_s=5)
    assert choose_look("blackout", 1e6, 1e6, cfg) == ("blackout", "hours")  # closed beats everything
    assert choose_look("on", 1e6, 10, cfg) == ("idle", "source lost")
    assert choose_look("on", 1e6, 4.9, cfg) == ("attract", "empty room")
    assert choose_look("on", 59.9, 0, cfg) == ("on", "open")
    assert choose_look("on", 1e6, 0, ScheduleConfig()) == ("on", "open")  # attract off by default
    assert choose_look("on", 0, 1e6, ScheduleConfig()) == ("on", "open")  # default: keep the last picture


def test_unknown_looks_are_named_with_their_key():
    cfg = ScheduleConfig.model_validate({"attract": "party", "hours": [{"look": "dim"}],
                                         "looks": {"dim": {"colour/brightness": 0.3}}})
    assert cfg.unknown_looks() == [("attract", "party")]
    assert "dim" in cfg.known_looks()


def test_builtin_looks_use_registered_parameters_in_range():
    reg = default_registry()
    for look in BUILTIN_LOOKS.values():
        for name, value in look.items():
            assert reg[name].coerce(value) == value


# ---- fading looks -------------------------------------------------------------------------------

LIVE = {"colour/brightness": 1.0, "colour/saturation": 1.0, "mix/feedback": 0.0, "show/blackout": False,
        "show/freeze": False}


def test_fade_into_a_look_glides_floats():
    look = {"colour/saturation": 2.0}
    assert blend_looks(LIVE, {}, look, 0.0) == {"colour/saturation": 1.0}
    assert blend_looks(LIVE, {}, look, 0.5) == {"colour/saturation": 1.5}
    assert blend_looks(LIVE, {}, look, 1.0) == {"colour/saturation": 2.0}


def test_blackout_fades_through_brightness_then_sets_the_flag():
    dark = BUILTIN_LOOKS["blackout"]
    half = blend_looks(LIVE, {}, dark, 0.5)
    assert half == {"colour/brightness": 0.5}  # the flag waits for the end of the fade
    end = blend_looks(LIVE, {}, dark, 1.0)
    assert end == {"show/blackout": True, "colour/brightness": 0.0}
    # leaving: the flag goes at once, brightness comes back up from black
    back = blend_looks(LIVE, end, BUILTIN_LOOKS["on"], 0.25)
    assert back == {"colour/brightness": 0.25}
    assert blend_looks(LIVE, end, BUILTIN_LOOKS["on"], 1.0) == {}


def test_fade_between_two_looks_starts_where_the_last_one_was():
    mid = blend_looks(LIVE, {}, {"colour/saturation": 2.0}, 0.5)
    nxt = blend_looks(LIVE, mid, {"colour/saturation": 0.0}, 0.5)
    assert nxt == {"colour/saturation": 0.75}


def test_unknown_names_in_a_look_are_ignored_not_fatal():
    assert blend_looks(LIVE, {}, {"nope/nothing": 1.0}, 1.0) == {}


# ---- is anyone there? ---------------------------------------------------------------------------

def room(person_x: int | None) -> np.ndarray:
    img = np.full((180, 320, 3), 90, np.uint8)
    if person_x is not None:
        img[40:170, person_x:person_x + 50] = 220
    return img


def test_presence_from_the_mask_area():
    p = Presence(empty_below=0.01, t0=0.0)
    person = np.zeros((90, 160), np.float32)
    person[20:80, 60:100] = 1.0
    p.observe(1.0, mask=person)
    assert p.empty_for(1.0) == 0.0
    p.observe(2.0, mask=np.zeros((90, 160), np.float32))
    assert p.empty_for(32.0) == pytest.approx(31.0)  # last seen at t=1


def test_presence_from_motion_when_there_is_no_mask():
    p = Presence(empty_below=0.01, ref_every_s=0.5, t0=0.0)
    for i in range(10):  # a still, empty room with a little sensor noise
        noise = np.random.default_rng(i).integers(-3, 4, (180, 320, 3))
        p.observe(i * 0.1, image=np.clip(room(None) + noise, 0, 255).astype(np.uint8))
    assert p.activity < 0.01
    assert p.empty_for(1.0) == pytest.approx(1.0)
    for i, x in enumerate(range(20, 260, 20)):  # someone walks across
        p.observe(1.0 + i * 0.1, image=room(x))
    assert p.activity >= 0.01
    assert p.empty_for(2.2) < 0.2


def test_presence_by_motion_ignores_masks_when_asked():
    p = Presence(by="motion", t0=0.0)
    p.observe(5.0, mask=np.ones((4, 4), np.float32))
    assert p.empty_for(5.0) == 5.0


# ---- in a running show --------------------------------------------------------------------------

class Room(BaseReader):
    """A camera on a room: still and empty until someone walks in (read on a real source thread)."""

    name = "room"
    fps = 30.0
    size = (320, 180)

    def __init__(self) -> None:
        self.someone = threading.Event()
        self.n = 0

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        stop.wait(1 / 30)
        self.n += 1
        x = 20 + (self.n * 9) % 250
        return room(x if self.someone.is_set() else None), self.n / 30


class RoomShow(Show):
    def open_source(self) -> Any:
        self.room = Room()
        return Reconnecting(self.room).start()


def run_scenario(show: Show, steps: list[tuple[str, Callable[[Show], bool], Callable[[Show], None]]],
                 before_run: Callable[[Show], None] = lambda s: None) -> None:
    """Each step waits (frame by frame, inside the loop) for its condition, then acts; a cap ends a stuck run."""
    pending = list(steps)

    class Script:
        def update(self, s: Show) -> None:
            while pending and pending[0][1](s):
                pending.pop(0)[2](s)
            if not pending:
                s.stop()

        def close(self) -> None:
            pass

    show.parts.append(Script())
    show.build()
    before_run(show)
    show.run()
    assert not pending, f"stuck waiting for: {pending[0][0]}"


def scheduled_show(tmp_path: Path, schedule: str, cls: type[Show] = Show) -> Show:
    p = small_show(tmp_path, name="show", tail=f"[schedule]\n{schedule}")
    return cls(load_show(p), RunOptions(headless=True, seconds=60, control=ControlOptions(osc=False)))


def frames(show: Show) -> int:
    return show.stats.counters["frames_presented"]


def control(show: Show) -> ScheduleControl:
    return next(c for c in show.parts if isinstance(c, ScheduleControl))


def test_closing_time_fades_to_black_and_opening_brings_the_picture_back(tmp_path: Path) -> None:
    show = scheduled_show(tmp_path, 'outside = "blackout"\nfade_s = 0.3\n'
                                    '[[schedule.hours]]\ndays = "tue-sun"\nstart = "10:00"\nend = "18:00"')
    now = [at(TUE, 12)]
    seen: dict[str, Any] = {}

    def set_clock(when: datetime) -> Callable[[Show], None]:
        def act(s: Show) -> None:
            now[0] = when
        return act

    def dark(s: Show) -> None:
        seen["dark"] = s.display.read()
        seen["blackout_target"] = s.store.target("show/blackout")

    def light(s: Show) -> None:
        seen["light"] = s.display.read()

    def mark(name: str) -> Callable[[Show], None]:
        return lambda s: seen.update({name: frames(s)})

    run_scenario(show, [
        ("open picture", lambda s: frames(s) >= 10, light),
        ("closing", lambda s: True, set_clock(at(TUE, 18, 30))),
        ("blackout flag", lambda s: s.snapshot["show/blackout"], mark("black")),
        ("dark", lambda s: frames(s) >= seen["black"] + 3, dark),
        ("morning", lambda s: True, set_clock(at(WED, 10, 5))),
        ("fade done", lambda s: "schedule" not in s.overrides, mark("lit")),
        ("lit again", lambda s: frames(s) >= seen["lit"] + 3, light),
    ], before_run=lambda s: setattr(control(s), "clock", lambda: now[0]))
    assert float(seen["dark"].max()) == 0.0  # black, while frames kept coming
    assert float(seen["light"].mean()) > 8.0
    assert seen["blackout_target"] is False  # the operator's value was never touched
    assert control(show).changes == 2


def test_an_empty_room_gets_the_attract_look_until_someone_comes(tmp_path: Path) -> None:
    show = scheduled_show(tmp_path, "attract_after_s = 0.5\nfade_s = 0.2\nempty_below = 0.02", RoomShow)

    def enter(s: Show) -> None:
        s.room.someone.set()

    seen: dict[str, Any] = {}
    run_scenario(show, [
        ("attract", lambda s: control(s).look == "attract" and s.snapshot["mix/feedback"] == 0.85,
         lambda s: seen.update(store=s.store.target("mix/feedback"))),
        ("someone enters", lambda s: True, enter),
        ("back to the live look", lambda s: control(s).look == "on" and "schedule" not in s.overrides,
         lambda s: seen.update(n=frames(s))),
        ("a frame later", lambda s: frames(s) > seen["n"], lambda s: seen.update(feedback=s.snapshot["mix/feedback"])),
    ])
    assert seen["store"] == 0.0  # the look lay over the live value; the store kept it
    assert seen["feedback"] == 0.0
