"""The frame-budget governor's judgement on a deterministic load: a simulated machine whose frame cost
follows the settings the governor chose, fed through the show's own Stats on a simulated clock (no
figure of this CPU is involved), and the render scale's picture through real GL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from installation.core.errors import UserError
from installation.core.timing import Stats
from installation.show.governor import (
    STEPS,
    Governor,
    GovernorConfig,
    Settings,
    Taken,
    allowed_steps,
    check_lines,
)

RATE = 30.0


def play(gov: Governor, cost_ms, seconds: float, t0: float = 0.0, stats: Stats | None = None,
         wait_ms: float = 1000.0 / RATE) -> Stats:
    """Present frames for `seconds` of simulated time: each frame takes cost_ms(settings, t) of the
    critical path (no faster than the source's rate), its latency is that cost plus `wait_ms`."""
    st = stats or Stats()
    t = t0
    while t < t0 + seconds:
        c = cost_ms(gov.settings, t)
        t_next = t + max(c, 1000.0 / RATE) / 1000.0
        while t + 1 / 120 < t_next:  # the show's loop asks about every 8 ms, between frames too
            t += 1 / 120
            gov.update(st, t)
        t = t_next
        st.presented(t - (c + wait_ms) / 1000.0, t)
        gov.update(st, t)
    return st


def draw_heavy(base: float, draw: float, seg: float = 0.0, model: float = 0.0):
    """A frame's cost: base work, a draw that scales with the render area, segmentation per segmented
    frame, the model per inferred frame."""
    return lambda s, t: base + draw * s.render_scale ** 2 + seg / s.seg_every + model / s.model_every


def test_a_steady_overload_is_met_step_by_step_then_left_alone() -> None:
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    play(gov, draw_heavy(10.0, 40.0, 6.0), 60.0)  # 56 ms at full quality, 23.5 ms at the cheapest
    s = gov.status()
    # seg 2 (53 ms), render 0.75 (35.5: still late), seg 3 (34.5: still late), render 0.5 (22): fits
    assert [h["step"] for h in s["history"]] == ["segmentation every 2 frames", "render scale 0.75",
                                                "segmentation every 3 frames", "render scale 0.5"]
    assert all(h["dir"] == "down" and h["why"].startswith("late: ") for h in s["history"])
    assert gov.settings == Settings(seg_every=3, render_scale=0.5)
    assert s["changes"] == 4 and s["ups"] == 0, "a load that stays must not be probed over and over"
    assert not s["cheapest_too_slow"]
    assert s["line"].startswith("governor: gave up segmentation every 3 frames, render scale 0.5; late: ")


def test_only_as_much_is_given_up_as_the_load_needs() -> None:
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    play(gov, draw_heavy(12.0, 28.0), 30.0)  # 40 ms; at render 0.75 27.75 ms fits
    assert gov.settings == Settings(seg_every=2, render_scale=0.75)
    assert gov.changes == 2


def test_a_fast_machine_gives_nothing_up() -> None:
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    play(gov, draw_heavy(5.0, 8.0, 3.0), 30.0)
    assert gov.settings == Settings() and gov.changes == 0
    assert gov.line().startswith("governor: nothing given up (30.0 fps of 30")


def test_a_show_that_just_fits_is_left_alone_and_one_just_late_is_not() -> None:
    """32 ms a frame keeps a 30 fps source (short windows hold 9, 10 or 11 of its frames: still 30 fps);
    35.5 ms gives 28.2 fps, under the 95 % line."""
    fits = Governor(GovernorConfig(), RATE, segmenting=True)
    play(fits, lambda s, t: 32.0, 60.0, wait_ms=20.0)
    assert fits.changes == 0 and fits.line().startswith("governor: nothing given up (30.0 fps of 30")
    late = Governor(GovernorConfig(), RATE, segmenting=True)
    play(late, lambda s, t: 35.5, 20.0, wait_ms=20.0)
    assert late.history[0]["why"].startswith("late: 28.2 fps of 30") and late.cheapest_too_slow


def test_steps_are_taken_back_in_reverse_when_the_load_goes() -> None:
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    heavy = draw_heavy(10.0, 40.0, 6.0)
    light = draw_heavy(2.0, 10.0, 2.0)  # another program stopped: 14 ms at full quality
    # a frame waits 10 ms for the worker here: the latency follows the work, so its ratios say what a step costs
    st = play(gov, heavy, 20.0, wait_ms=10.0)
    downs = [h["step"] for h in gov.history]
    assert len(downs) >= 3 and gov.settings != Settings()
    play(gov, light, 60.0, t0=20.0, stats=st, wait_ms=10.0)
    ups = [h["step"] for h in gov.history if h["dir"] == "up"]
    assert ups == downs[::-1]
    assert gov.settings == Settings()
    assert all(h["why"].startswith("room: ") for h in gov.history if h["dir"] == "up")


def test_on_the_edge_it_settles_instead_of_see_sawing() -> None:
    """Full quality is just too slow in frames a second (36 ms a frame) while its latency looks fine, so
    each window at render 0.75 looks like room: each step back that turns out late doubles the wait
    before the next try, so the changes thin out instead of repeating every few seconds."""
    gov = Governor(GovernorConfig(), RATE, segmenting=False)

    def edge(s: Settings, t: float) -> float:
        return 20.0 + 16.0 * s.render_scale ** 2  # 36 ms at 1.0 (27.8 fps), 29 at 0.75

    play(gov, edge, 300.0, wait_ms=8.0)
    s = gov.status()
    times = [h["t_s"] for h in s["history"]]
    assert s["bounces"] >= 2, s["history"]
    assert s["changes"] <= 16, f"{s['changes']} changes in 300 s: {times}"
    assert sum(t > 150.0 for t in times) <= 4, f"the changes must thin out: {times}"
    assert s["hold_windows"] >= 16


def test_when_even_the_cheapest_settings_do_not_fit_it_says_so() -> None:
    gov = Governor(GovernorConfig(render_scale_min=0.75), RATE, segmenting=True)
    play(gov, lambda s, t: 60.0, 15.0)  # a slow model: no knob helps
    assert gov.settings == Settings(seg_every=3, render_scale=0.75, model_every=3), "never below the floor"
    assert gov.cheapest_too_slow
    assert gov.line().startswith("governor: even the cheapest settings do not fit: 16.7 fps of 30")
    assert gov.hud_lines()[0].startswith("! governor: even the cheapest")


def test_the_model_on_fewer_frames_is_the_last_step() -> None:
    """A slow model: the cheapest segmentation and render scale still leave 52 ms a frame, the model on
    every 2nd frame 37; on every 3rd, 32, within the source's rate. A pin to every frame keeps it, and
    says that even the cheapest settings do not fit."""
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    play(gov, draw_heavy(10.0, 40.0, 6.0, model=30.0), 60.0)
    steps = [h["step"] for h in gov.history]
    assert steps[-2:] == ["model every 2 frames", "model every 3 frames"] and len(steps) == 6, steps
    assert gov.ups == 0 and not gov.cheapest_too_slow
    assert gov.settings == Settings(seg_every=3, render_scale=0.5, model_every=3)
    assert gov.status()["settings"]["model_every"] == 3
    assert gov.line().startswith("governor: gave up segmentation every 3 frames, render scale 0.5, model every 3 "
                                 "frames; late: ")
    pinned = Governor(GovernorConfig(model_every=1), RATE, segmenting=True)
    play(pinned, draw_heavy(10.0, 40.0, 6.0, model=30.0), 20.0)
    assert pinned.settings == Settings(seg_every=3, render_scale=0.5) and pinned.cheapest_too_slow


def test_a_first_start_whose_trial_inference_is_over_half_a_frame_begins_with_the_model_on_every_2nd() -> None:
    """No verdict to resume: the model's trial inference at load (on every core) and the warm-up's
    segmentation decide whether the run begins with the model on every 2nd frame; a model that fits, a
    resumed verdict or a pin leave it."""
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    gov.start(25.0)  # 0.75 of a 33 ms frame
    assert gov.settings == Settings(model_every=2) and gov.changes == 0
    assert gov.history[-1]["dir"] == "start" and "trial inference took 25.0 ms" in gov.line()
    for cfg, trial in ((GovernorConfig(), 12.0), (GovernorConfig(model_every=1), 25.0),
                       (GovernorConfig(mode="off"), 25.0), (GovernorConfig(), None)):
        other = Governor(cfg, RATE, segmenting=True)
        other.start(trial)
        assert other.settings.model_every == 1 and not other.history, (cfg, trial)
    segmenting = Governor(GovernorConfig(), RATE, segmenting=True)
    segmenting.start(12.0, 6.0)  # a show that segments: its segmentation counts too
    assert segmenting.settings == Settings(model_every=2) and "a segmentation 6.0 ms" in segmenting.line()
    resumed = Governor(GovernorConfig(), RATE, segmenting=True)
    resumed.taken = [Taken("render_scale", 0.75, "where the last run settled", 40.0, 30.0)]
    resumed.start(25.0)
    assert [(t.knob, t.level) for t in resumed.taken] == [("render_scale", 0.75)]


def test_a_last_run_that_settled_with_nothing_given_up_is_not_second_guessed(tmp_path: Path) -> None:
    first = Governor(GovernorConfig(), RATE, segmenting=False)
    play(first, draw_heavy(5.0, 8.0), 3.0)
    first.save(tmp_path, "cpu")
    again = Governor(GovernorConfig(), RATE, segmenting=False)
    again.resume(tmp_path, "cpu")
    again.start(25.0)
    assert again.settings == Settings() and not again.history
    elsewhere = Governor(GovernorConfig(), RATE, segmenting=False)
    elsewhere.resume(tmp_path, "another cpu")
    elsewhere.start(25.0)
    assert elsewhere.settings == Settings(model_every=2)


def test_the_first_guess_stays_while_taking_it_back_would_not_fit() -> None:
    """A model of 32 ms on a 5 ms frame: on every frame 37 ms (27 fps, late), on every 2nd 21 ms. The
    start's guess is judged by what it is thought to save (the trial's time on each frame's latency), so
    31 ms of latency times (31 + 32) / 31 is no room for it: nothing changes."""
    gov = Governor(GovernorConfig(), RATE, segmenting=False)
    gov.start(32.0)
    play(gov, draw_heavy(5.0, 0.0, model=32.0), 30.0, wait_ms=10.0)
    assert gov.settings == Settings(model_every=2) and gov.changes == 0, gov.history


def test_a_step_back_that_does_not_fit_is_given_up_again_not_the_next_in_order() -> None:
    """The same load, but a guess thought to save only 17 ms: taking it back looks like room, is late, and
    the governor gives the model's step up again (not segmentation, the first of the order) and waits
    twice as long before the next try."""
    gov = Governor(GovernorConfig(), RATE, segmenting=True)
    gov.start(17.0)
    play(gov, draw_heavy(5.0, 0.0, model=32.0), 12.0, wait_ms=10.0)
    dirs = [(h["dir"], h["step"]) for h in gov.history]
    assert dirs[:3] == [("start", "model every 2 frames"), ("up", "model every 2 frames"),
                        ("down", "model every 2 frames")], dirs
    assert gov.settings == Settings(model_every=2) and gov.bounces == 1 and gov.hold == 8


def test_pins_and_floors_narrow_the_steps() -> None:
    assert allowed_steps(GovernorConfig(), segmenting=True) == list(STEPS)
    assert allowed_steps(GovernorConfig(), segmenting=False) == [("render_scale", 0.75), ("render_scale", 0.5),
                                                                 ("model_every", 2), ("model_every", 3)]
    assert allowed_steps(GovernorConfig(model_every_max=2), segmenting=False)[-1] == ("model_every", 2)
    assert allowed_steps(GovernorConfig(seg_every=1, render_scale_min=0.75, model_every_max=1),
                         segmenting=True) == [("render_scale", 0.75)]
    assert allowed_steps(GovernorConfig(seg_every_max=2, render_scale=1.0, model_every=1), segmenting=True) == \
        [("seg_every", 2)]
    assert allowed_steps(GovernorConfig(seg_every=1, render_scale=1.0), segmenting=True) == \
        [("model_every", 2), ("model_every", 3)]
    pinned = Governor(GovernorConfig(seg_every=2, render_scale=0.75, model_every=1), RATE, segmenting=True)
    assert pinned.settings == Settings(seg_every=2, render_scale=0.75), "pins apply from the first frame"
    play(pinned, lambda s, t: 50.0, 10.0)
    assert pinned.settings == Settings(seg_every=2, render_scale=0.75) and pinned.cheapest_too_slow


def test_off_plays_what_the_file_says() -> None:
    gov = Governor(GovernorConfig(mode="off", render_scale=0.75), RATE, segmenting=True)
    play(gov, lambda s, t: 80.0, 10.0)
    assert gov.settings == Settings(render_scale=0.75) and gov.changes == 0
    assert gov.line() == "governor: off in the show file; pinned: render scale 0.75"
    assert Governor(GovernorConfig(), None, True).line().startswith("governor: the source is read as fast")
    assert Governor(GovernorConfig(), RATE, True, lockstep=True).status()["changes"] == 0


def test_check_says_what_it_may_give_up_and_its_last_verdict(tmp_path: Path) -> None:
    gov = Governor(GovernorConfig(), RATE, segmenting=False)
    play(gov, lambda s, t: 60.0, 10.0)
    gov.save(tmp_path, "Test CPU")
    lines = check_lines(GovernorConfig(), False, tmp_path, "Test CPU")
    assert lines[0] == ("governor: auto; when frames do not fit the source's rate it gives up, in order: "
                        "render scale 0.75, then render scale 0.5, then model every 2 frames, then model every "
                        "3 frames")
    assert lines[1].startswith("governor: a run with no verdict of this CPU's to resume begins with the model on "
                               "every 2nd frame where its trial inference and a segmentation take over 50%")
    assert "(this CPU)" not in lines[2] and ", this CPU): even the cheapest settings do not fit" in lines[2]
    pinned = check_lines(GovernorConfig(model_every=1), False, None, "Test CPU")
    assert len(pinned) == 1, "with the model's rate pinned, no first guess to announce"
    other = check_lines(GovernorConfig(mode="off"), False, tmp_path, "Another CPU")
    assert other[0] == "governor: off (plays what the file says)"
    assert "another CPU (Test CPU)" in other[1]


def test_the_next_start_on_this_cpu_begins_where_the_last_settled(tmp_path: Path) -> None:
    first = Governor(GovernorConfig(), RATE, segmenting=True)
    play(first, draw_heavy(12.0, 28.0), 30.0)
    first.save(tmp_path, "Test CPU")
    again = Governor(GovernorConfig(), RATE, segmenting=True)
    again.resume(tmp_path, "Test CPU")
    assert again.settings == first.settings == Settings(seg_every=2, render_scale=0.75)
    assert again.line().startswith("governor: gave up segmentation every 2 frames, render scale 0.75; where the "
                                   "last run on this CPU settled: late: ")
    play(again, draw_heavy(12.0, 28.0), 30.0)
    assert again.changes == 0, "the same load: nothing to find again"
    for _ in range(3):  # a show restarted every day: the reason is said once, however often it resumed
        again.save(tmp_path, "Test CPU")
        again = Governor(GovernorConfig(), RATE, segmenting=True)
        again.resume(tmp_path, "Test CPU")
    assert again.line().count("where the last run on this CPU settled") == 1, again.line()
    assert again.line().endswith(first.taken[-1].why), again.line()
    import json

    from installation.show.governor import RESUMED, VERDICT_FILE

    verdict = tmp_path / VERDICT_FILE
    again.save(tmp_path, "Test CPU")
    v = json.loads(verdict.read_text())
    assert all(not t["why"].startswith(RESUMED) for t in v["taken"]), "the verdict keeps the reason itself"
    for t in v["taken"]:  # a verdict saved before that, by a show restarted twice: read as if saved bare
        t["why"] = 2 * RESUMED + t["why"]
    verdict.write_text(json.dumps(v))
    healed = Governor(GovernorConfig(), RATE, segmenting=True)
    healed.resume(tmp_path, "Test CPU")
    assert healed.line() == again.line(), healed.line()
    from installation.render.hud import MAX_CHARS

    head, why = again.hud_lines()  # on the HUD: what it gave up, then why, each whole within its width
    assert head == "governor: gave up segmentation every 2 frames, render scale 0.75", head
    assert why.strip() == again.line().partition("; ")[2] and len(why) <= MAX_CHARS, why
    elsewhere = Governor(GovernorConfig(), RATE, segmenting=True)
    elsewhere.resume(tmp_path, "Faster CPU")
    assert elsewhere.settings == Settings(), "another machine starts from the show file"
    pinned = Governor(GovernorConfig(render_scale=1.0), RATE, segmenting=True)
    pinned.resume(tmp_path, "Test CPU")
    assert pinned.settings == Settings(seg_every=2), "a pin wins over the memory"
    light = Governor(GovernorConfig(), RATE, segmenting=True)
    light.resume(tmp_path, "Test CPU")
    play(light, draw_heavy(2.0, 8.0), 30.0)  # the machine is quiet today: the steps are taken back
    assert light.settings == Settings()


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('governor = "sometimes"', "governor.mode", "one of 'auto' or 'off'"),
    ("[governor]\nrender_scale = 0.1", "governor.render_scale", "\"auto\", or from 0.25 to 1"),
    ('[governor]\nseg_every = "often"', "governor.seg_every", "\"auto\", or from 1 to 30"),
    ("[governor]\nseg_evry = 2", "governor.seg_evry", "one of: mode, seg_every, seg_every_max"),
    ("[governor]\nrender_scale_min = 2", "governor.render_scale_min", "<= 1.0"),
])
def test_a_wrong_governor_setting_names_file_key_and_expectation(tmp_path: Path, text: str, key: str,
                                                                   expected: str) -> None:
    from installation.app import load_show

    path = tmp_path / "show.toml"
    path.write_text(text + "\n")
    with pytest.raises(UserError) as e:
        load_show(path)
    assert e.value.key == key and expected in (e.value.expected or ""), e.value.render()
    assert str(path) in e.value.render()


def test_governor_off_is_short_for_the_table(tmp_path: Path) -> None:
    from installation.app import load_show

    path = tmp_path / "show.toml"
    path.write_text('governor = "off"\n')
    assert load_show(path).governor == GovernorConfig(mode="off")


def test_a_scaled_present_is_the_full_picture_scaled(tmp_path: Path) -> None:
    """The render scale draws the present pass smaller and blits it up: the same picture, softer."""
    from installation.app import default_registry
    from installation.core.params import ParamStore
    from installation.render.displays import HeadlessDisplay
    from installation.render.renderer import Layers, Renderer, finish, read_pixels

    store = ParamStore(default_registry())
    store.set("mix/mode", "person", source="config", ramp_s=0.0)
    snap = store.publish()
    d = HeadlessDisplay((320, 180))
    r = Renderer(d.ctx, 128)
    yy, xx = np.mgrid[0:128, 0:128]
    camera = np.stack([xx * 2, yy * 2, np.full_like(xx, 90)], -1).astype(np.uint8)  # smooth ramps
    output = np.full((64, 64, 3), (200, 40, 160), np.uint8)
    mask = (xx[::2, ::2] > 32).astype(np.float32)  # left quarter camera, the rest the model's colour
    pictures = {}
    for scale in (1.0, 0.5):
        r.upload(Layers(camera=camera, output=output, mask=mask))
        r.present(snap, d.fbo, d.size, r.content_for(snap), scale=scale)
        finish(d.ctx)
        pictures[scale] = read_pixels(d.fbo, d.size).astype(np.int16)
    full, half = pictures[1.0], pictures[0.5]
    assert half.shape == full.shape == (180, 320, 3)
    assert np.abs(half[90, 200] - (200, 40, 160)).max() <= 2, "the model's colour where the mask is"
    assert np.abs(half[:, :40] - full[:, :40]).max() <= 2, "the bars beside the content stay black"
    assert np.abs(half - full).mean() < 4.0, "the same picture, scaled"
    d.close()
