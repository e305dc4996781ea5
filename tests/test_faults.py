"""Fault injection on a running show: real sources, real ONNX models, real GL, real UDP.

Each scenario runs the live loop headless on the test's thread. A Script control (a real show control,
updated once a frame) waits for each step's condition, then injects the next fault or its cure. No
step waits on a clock: conditions are counts (frames presented, frames held, reconnects), and a
generous time cap only ends a scenario that stopped making progress (then it fails, naming the step).

For every fault: the loop keeps presenting frames, recovers where recovery is possible, and the show's
configuration and live values are what they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SYNTHETIC, make_clip, make_model_folder, make_tiny_onnx, small_show

from installation.app import RunOptions, Show, load_show
from installation.cli import main
from installation.inference.models import ModelCard
from installation.media.sources import BaseReader, Reconnecting
from installation.render.renderer import Renderer
from installation.render.shaders import SHADER_DIR
from installation.show.options import ControlOptions
from installation.vision.preprocess import Chain

CAP_S = 90.0  # only a stuck scenario gets near this; it then fails on the step it was waiting for


def show_file(tmp_path: Path, source: str = SYNTHETIC, model: Path | None = None, extra: str = "",
              osc: bool = False) -> Path:
    health = "[health]\nmodel_retry_s = 0.3\nmodel_retry_max_s = 1.0\nmodel_fail_after = 3\n"
    return small_show(tmp_path, name="faults", source=source, model=model, osc=f"enabled = {str(osc).lower()}",
                      tail=health + extra)


def presented(show: Show) -> int:
    return show.stats.counters["frames_presented"]


def held(show: Show) -> int:
    return show.stats.counters["frames_held"]


Step = tuple[str, Callable[[Show], bool], Callable[[Show], None]]


class Script:
    """Runs a scenario inside the loop: each step waits for its condition, then acts; then the show stops."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.done: list[str] = []
        self.pictures: list[np.ndarray] = []  # what the screen showed at each fresh frame (newest last)
        self.last_fresh: np.ndarray | None = None
        self._n = 0

    def update(self, show: Show) -> None:
        n = presented(show)
        if n != self._n:
            self._n = n
            self.last_fresh = show.display.read()
        while self.steps:
            name, cond, act = self.steps[0]
            if not cond(show):
                return
            act(show)
            self.done.append(name)
            self.steps.pop(0)
        show.stop()

    def close(self) -> None:
        pass

    @property
    def waiting_for(self) -> str:
        return self.steps[0][0] if self.steps else ""


def play(show: Show, script: Script) -> dict[str, Any]:
    show.parts.append(script)
    if show.renderer is None:
        show.build()
    summary = show.run()
    assert not script.steps, f"stuck waiting for: {script.waiting_for} (done: {script.done})"
    return summary


NO_OSC = ControlOptions(osc=False)  # frozen: one object serves every default


def build(cfg_path: Path, cls: type[Show] = Show, control: ControlOptions = NO_OSC, **opts: Any) -> Show:
    cfg = load_show(cfg_path)
    return cls(cfg, RunOptions(headless=True, seconds=CAP_S, control=control, **opts))


def lit(picture: np.ndarray | None) -> bool:
    """Not a black screen."""
    return picture is not None and float(picture.mean()) > 8.0


def config_of(show: Show) -> tuple[dict[str, Any], dict[str, Any]]:
    return show.cfg.model_dump(mode="json"), show.store.targets()


# ---- the source ---------------------------------------------------------------------------------

class Unpluggable(BaseReader):
    """A camera-like reader that can be unplugged and plugged in again: open() and read() raise OSError
    while it is out, as a V4L2 camera does."""

    name = "unpluggable"
    fps = 30.0
    size = (160, 90)
    paces_itself = True

    def __init__(self) -> None:
        self.plugged = threading.Event()
        self.plugged.set()
        self.opens = 0
        self.n = 0

    def open(self, stop: threading.Event) -> None:
        if not self.plugged.is_set():
            raise OSError("no such device")
        self.opens += 1

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        if not self.plugged.is_set():
            raise OSError("camera read failed (unplugged?)")
        stop.wait(1 / 60)
        self.n += 1
        img = np.zeros((90, 160, 3), np.uint8)
        img[:, :, 0] = 40 + (self.n * 7) % 200  # every frame differs: a held one can be told apart
        img[20:70, 40:120] = (200, 180, 90)
        return img, self.n / 30.0


class UnpluggableShow(Show):
    def open_source(self) -> Any:
        self.unpluggable = Unpluggable()
        return Reconnecting(self.unpluggable, on_fault=self.stats.fault).start()


def test_camera_unplugged_mid_run_keeps_the_last_picture_and_resumes(tmp_path: Path) -> None:
    show = build(show_file(tmp_path, model=make_model_folder(tmp_path / "m")), UnpluggableShow)
    marks: dict[str, Any] = {}
    script = Script([])

    def unplug(s: Show) -> None:
        marks["config"] = config_of(s)
        s.unpluggable.plugged.clear()

    def note_held(s: Show) -> None:
        marks["held_picture"] = s.display.read()
        marks["last_fresh"] = script.last_fresh
        marks["connected_while_out"] = s.source.connected
        marks["hud"] = s.hud_text()

    def replug(s: Show) -> None:
        marks["n_replug"] = presented(s)
        s.unpluggable.plugged.set()

    script.steps = [
        ("first frames", lambda s: presented(s) >= 10, unplug),
        ("frames held while unplugged", lambda s: held(s) >= 5 and s.source.reconnects >= 1, note_held),
        ("replug", lambda s: True, replug),
        ("fresh frames again", lambda s: presented(s) >= marks["n_replug"] + 10, lambda s: None),
    ]
    summary = play(show, script)
    assert show.unpluggable.opens >= 2 and show.source.connected
    assert summary["health"]["reconnects"] >= 1 and summary["health"]["frames_held"] >= 5
    assert marks["connected_while_out"] is False
    # the screen kept the last good picture, not black
    assert lit(marks["held_picture"])
    assert np.array_equal(marks["held_picture"], marks["last_fresh"])
    assert any("source unpluggable" in line for line in marks["hud"])
    assert config_of(show) == marks["config"]
    assert summary["faults"]["source"] >= 1


def test_camera_lost_for_a_while_shows_the_idle_look_chosen_in_the_show(tmp_path: Path) -> None:
    from installation.show.schedule import ScheduleControl

    show = build(show_file(tmp_path, extra='[schedule]\nsource_lost = "idle"\nsource_lost_after_s = 0.3\n'
                                           'fade_s = 0'), UnpluggableShow)
    marks: dict[str, Any] = {}
    script = Script([])

    def look(s: Show) -> str:
        return next(c for c in s.parts if isinstance(c, ScheduleControl)).look

    def note(s: Show) -> None:
        marks["idle"], marks["before"] = s.display.read(), script.last_fresh
        marks["n"] = presented(s)
        s.unpluggable.plugged.set()

    script.steps = [
        ("first frames", lambda s: presented(s) >= 10, lambda s: s.unpluggable.plugged.clear()),
        ("idle look", lambda s: look(s) == "idle", lambda s: marks.update(h=held(s))),
        ("held in the idle look", lambda s: held(s) >= marks["h"] + 2, note),
        ("back", lambda s: look(s) == "on" and presented(s) >= marks["n"] + 5, lambda s: None),
    ]
    play(show, script)
    assert lit(marks["before"]) and 0 < marks["idle"].mean() < marks["before"].mean() * 0.6  # dimmed, not black


def test_video_replaced_by_garbage_is_reopened_and_resumes(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=20)
    good = clip.read_bytes()
    show = build(show_file(tmp_path, source=f'kind = "video"\nvideo = "{clip}"'), realtime=True)
    marks: dict[str, Any] = {}

    def replace(data: bytes, mark: str) -> Callable[[Show], None]:
        def act(s: Show) -> None:
            tmp = clip.with_suffix(".new")
            tmp.write_bytes(data)
            os.replace(tmp, clip)  # what a copy onto the gallery machine does
            marks[mark] = presented(s)
            marks.setdefault("config", config_of(s))
        return act

    script = Script([
        ("playing", lambda s: presented(s) >= 5, replace(b"\x00garbage, not a video\xff" * 500, "broken")),
        ("lost at the loop's end, held", lambda s: s.source.errors >= 1 and held(s) >= 3, replace(good, "mended")),
        ("reopened and playing", lambda s: s.source.connected and presented(s) >= marks["mended"] + 10,
         lambda s: None),
    ])
    summary = play(show, script)
    assert summary["health"]["frames_held"] >= 3
    assert show.source.loops >= 1
    assert "changed on disk" in summary["last_fault"] or summary["faults"]["source"] >= 1
    assert config_of(show) == marks["config"]


# ---- the model ----------------------------------------------------------------------------------

def test_corrupt_model_at_start_shows_the_camera_and_is_retried(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_model_folder(tmp_path / "m")
    good = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(good[: len(good) // 3])  # a copy cut short
    path = show_file(tmp_path, model=folder)
    assert main(["check", str(path)]) == 2  # `check` still calls it an error
    assert "model.onnx" in capsys.readouterr().err

    show = build(path)
    marks: dict[str, Any] = {}
    script = Script([])

    def repair(s: Show) -> None:
        marks["camera_picture"] = script.last_fresh
        marks["error"] = s.slot.error
        marks["config"] = config_of(s)
        tmp = folder / "model.onnx.new"
        tmp.write_bytes(good)
        os.replace(tmp, folder / "model.onnx")

    script.steps = [
        ("camera only, retrying", lambda s: presented(s) >= 5 and s.stats.counters["model_retries"] >= 1, repair),
        ("model back", lambda s: s.slot.model is not None and s.stats.counters["frames_inferred"] >= 5, lambda s: None),
    ]
    summary = play(show, script)
    assert show.slot.model is not None and show.slot.error == ""
    assert "model.onnx" in marks["error"]
    assert lit(marks["camera_picture"])
    assert summary["faults"]["model"] >= 1
    assert config_of(show) == marks["config"]


def test_model_failing_at_run_time_falls_back_to_the_camera_and_recovers(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m", size=64)
    wrong = ModelCard(name="tiny", size=(32, 32), chain=Chain.from_spec("plain", 32))  # the graph wants 64
    wrong.save(folder)
    show = build(show_file(tmp_path, model=folder))
    assert show.cfg.model.path == folder
    marks: dict[str, Any] = {}
    script = Script([])

    def fix_card(s: Show) -> None:
        marks["camera_picture"] = script.last_fresh
        marks["error"] = s.slot.error
        marks["config"] = config_of(s)
        ModelCard(name="tiny", size=(64, 64), chain=Chain.from_spec("plain", 64)).save(folder)

    script.steps = [
        ("dropped after failing, camera shows, retried",
         lambda s: s.slot.model is None and s.stats.counters["model_retries"] >= 2 and presented(s) >= 10, fix_card),
        ("model back", lambda s: s.slot.model is not None and s.stats.counters["frames_inferred"] >= 5, lambda s: None),
    ]
    summary = play(show, script)
    assert "failed" in marks["error"] and ("InvalidArgument" in marks["error"] or "dimensions" in marks["error"])
    assert lit(marks["camera_picture"])
    assert summary["faults"]["model"] >= 3
    assert show.slot.model is not None and show.slot.model.card.size == (64, 64)
    assert config_of(show) == marks["config"]


def test_a_failed_swap_keeps_the_running_model(tmp_path: Path) -> None:
    show = build(show_file(tmp_path, model=make_model_folder(tmp_path / "m")))
    marks: dict[str, Any] = {}

    def swap_to_nothing(s: Show) -> None:
        marks["model"] = s.slot.model
        marks["inferred"] = s.stats.counters["frames_inferred"]
        s.store.set("model/select", str(tmp_path / "no-such-model"), source="test")

    script = Script([
        ("running", lambda s: s.stats.counters["frames_inferred"] >= 3, swap_to_nothing),
        ("swap failed", lambda s: "swap" in s.slot.error, lambda s: None),
        ("still inferring", lambda s: s.stats.counters["frames_inferred"] >= marks["inferred"] + 5, lambda s: None),
    ])
    play(show, script)
    assert show.slot.model is marks["model"]


def test_a_missing_selfie_model_reaches_the_hud_the_stats_and_the_health_counters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from installation.vision import segment

    monkeypatch.setattr(segment, "DEFAULT_MODELS_DIR", tmp_path / "nothing-fetched")
    show = build(show_file(tmp_path, model=make_model_folder(tmp_path / "m"), extra='[params]\n"seg/mode" = "selfie"'))
    marks: dict[str, Any] = {}

    def look(s: Show) -> None:
        marks["hud"] = "\n".join(s.hud_text())
        marks["health"] = s.counters()

    script = Script([("segmentation failed a few times",
                      lambda s: s.workers.segmenter.failures >= 5 and presented(s) >= 10, look)])
    summary = play(show, script)
    assert "segment" in marks["hud"] and "selfie segmentation model not found" in marks["hud"], marks["hud"]
    assert marks["health"]["faults"]["segment"] >= 5 and marks["health"]["segment_failures"] >= 5
    assert summary["faults"]["segment"] >= 5
    assert summary["counters"]["frames_inferred"] > 0, "the model still runs, without a mask"


# ---- shaders ------------------------------------------------------------------------------------

def test_broken_shader_on_reload_keeps_the_last_good_program(tmp_path: Path) -> None:
    shaders = tmp_path / "shaders"
    shutil.copytree(SHADER_DIR, shaders)
    frag = shaders / "composite.frag"
    good = frag.read_text()
    show = build(show_file(tmp_path)).build()
    assert show.renderer is not None
    show.renderer = Renderer(show.display.ctx, show.cfg.render.content_size, shader_dir=shaders)
    marks: dict[str, Any] = {}

    def write(text: str, bump: int) -> Callable[[Show], None]:
        def act(s: Show) -> None:
            frag.write_text(text)
            st = frag.stat()
            os.utime(frag, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))  # a visible change
            marks[f"n_{bump}"] = presented(s)
        return act

    def note(s: Show) -> None:
        marks["hud"] = s.hud_text()
        marks["picture"] = s.display.read()

    broken = good.replace("void main", "this is not glsl;\nvoid main", 1)
    script = Script([
        ("running", lambda s: presented(s) >= 5, write(broken, 1)),
        ("compile error recorded", lambda s: "composite" in s.renderer.shaders.errors, lambda s: None),
        ("still presenting", lambda s: presented(s) >= marks["n_1"] + 10, note),
        ("fixed", lambda s: True, write(good, 2)),
        ("reloaded", lambda s: not s.renderer.shaders.errors and s.renderer.shaders.reloads >= 1, lambda s: None),
        ("presenting", lambda s: presented(s) >= marks["n_2"] + 5, lambda s: None),
    ])
    play(show, script)
    at = next(i for i, ln in enumerate(marks["hud"]) if ln.startswith("! composite"))
    assert "error" in marks["hud"][at + 1] and "this" in marks["hud"][at + 1]  # the compiler's own words
    assert lit(marks["picture"])


# ---- OSC ----------------------------------------------------------------------------------------

def _garbage(rng: np.random.Generator, i: int) -> bytes:
    kinds = [
        lambda: rng.bytes(int(rng.integers(1, 200))),  # noise
        lambda: b"/mix/amount\x00",  # an address with no type tags
        lambda: b"/mix/amount\x00\x00\x00\x00,f\x00\x00\x7f",  # a float cut short
        lambda: b"#bundle\x00" + rng.bytes(12),  # a bundle with a broken element
        lambda: b"/mix/amount\x00\x00\x00\x00,s\x00\x00" + b"x" * 9,  # a string never terminated
        lambda: b"/colour/brightness\x00\x00,f\x00\x00\x7f\xc0\x00\x00",  # NaN
        lambda: b"",
        lambda: b"/" * 3000,
    ]
    return kinds[i % len(kinds)]()


def test_osc_flood_of_malformed_packets_changes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("installation.control.osc")
    show = build(show_file(tmp_path, osc=True),
                 control=ControlOptions(osc_host="127.0.0.1", osc_port=0, oscquery_port=0)).build()
    osc = next(c for c in show.surfaces if type(c).__name__ == "OscControl")
    port = osc.port
    assert port > 0
    sent = [0]
    stop = threading.Event()

    def flood() -> None:
        rng = np.random.default_rng(7)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            i = 0
            while not stop.is_set() and i < 20000:
                with contextlib.suppress(OSError):  # a datagram the kernel refuses: fine, go on
                    sock.sendto(_garbage(rng, i), ("127.0.0.1", port))
                i += 1
                sent[0] = i
                if i % 200 == 0:
                    time.sleep(0.001)

    marks: dict[str, Any] = {}

    def start(s: Show) -> None:
        marks["config"] = config_of(s)
        marks["n"] = presented(s)
        threading.Thread(target=flood, daemon=True).start()

    script = Script([
        ("running", lambda s: presented(s) >= 5, start),
        ("flooded while presenting", lambda s: osc.counters.rejected >= 500 and presented(s) >= marks["n"] + 20,
         lambda s: stop.set()),
    ])
    try:
        play(show, script)
    finally:
        stop.set()
    assert sent[0] >= 500
    assert config_of(show) == marks["config"]
    assert show.stats.counters["frames_presented"] >= marks["n"] + 20


def test_tiny_onnx_helper_is_a_real_model(tmp_path: Path) -> None:
    """The models the scenarios break are real ONNX graphs ORT runs (so a failure is the fault's, not the helper's)."""
    from installation.inference.models import load_model

    p = make_tiny_onnx(tmp_path / "x.onnx", 32)
    m = load_model(p, "cpu")
    out = m.infer(np.full((32, 32, 3), 128, np.uint8))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
