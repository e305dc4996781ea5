"""The governor on the real show: `installation rehearse` under a frame budget made tight on purpose
(INSTALLATION_DRAW_COST_MS: a documented, deterministic cost added to each drawn frame, scaled with the
render area as the present pass's own cost is), judged by what comes out: the stats JSON, the last lines
of the command, the HUD, the recording and `check`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from installation.show.loop import DRAW_COST_ENV
from tests.conftest import small_show
from tests.scenarios.conftest import flat_model, frames_of, run_cli, slow_model

# 80 ms at full scale: ~12 fps against a 30 fps source; 45 ms at 0.75 (still late); 20 ms at 0.5 (fits)
DRAW_COST_MS = "80"
SOURCE_30 = 'kind = "synthetic"\nwidth = 160\nheight = 90\nfps = 30'
# the load these tests inject is the draw's: the model's steps are pinned off, so a machine that is busy
# besides (CI's) cannot take them too and change what the test reads (tests/test_model_every.py has them)
DRAW_ONLY = "[governor]\nmodel_every = 1"


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DRAW_COST_ENV, DRAW_COST_MS)  # cli_env copies os.environ into the subprocess


def rehearse(tmp_path: Path, show: Path, seconds: float = 9, *extra: object) -> tuple[dict, str]:
    stats = tmp_path / "stats.json"
    r = run_cli(["rehearse", show, "--headless", "--seconds", seconds, "--stats", stats, *extra], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(stats.read_text()), r.stdout


def test_a_show_that_does_not_fit_gives_up_render_scale_and_says_why(tmp_path: Path, loaded: None) -> None:
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    show = small_show(tmp_path, source=SOURCE_30, model=model, tail=DRAW_ONLY)
    out = tmp_path / "out.mp4"
    s, stdout = rehearse(tmp_path, show, 9, "--record", out)
    g = s["health"]["governor"]
    assert g["mode"] == "auto" and g["settings"] == {"seg_every": 1, "render_scale": 0.5, "model_every": 1}, \
        g["history"]
    assert g["given_up"] == ["render scale 0.5"]
    assert [h["step"] for h in g["history"]][:2] == ["render scale 0.75", "render scale 0.5"]
    assert g["why"].startswith("late: ") and "fps of 30" in g["why"]
    # frames kept up once it had given enough up: it stayed there (a step back tried on a quiet machine is
    # late at once and given up again, and counted as a bounce), and its last window presented far more
    # frames than the one that made it start (a quarter of the injected cost; the machine's other load is
    # not the test's to judge)
    assert g["ups"] == g["bounces"] <= 1 and g["changes"] == 2 + 2 * g["ups"], g["history"]
    assert g["last_window"]["fps"] > 1.5 * g["history"][0]["fps"], g
    assert "governor: gave up render scale 0.5; late: " in stdout
    # the recording is the screen's size, the picture the model's colour: the scaled pass was blown up
    pictures = frames_of(out)
    assert pictures[-1].shape == (90, 160, 3)
    centre = pictures[-1][45, 80][::-1].astype(int)  # BGR -> RGB
    assert np.abs(centre - (200, 40, 160)).max() <= 12, centre


def test_governor_off_plays_what_the_file_says(tmp_path: Path, loaded: None) -> None:
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    show = small_show(tmp_path, source=SOURCE_30, model=model)
    show.write_text('governor = "off"\n' + show.read_text())  # a top-level key: before the first table
    s, stdout = rehearse(tmp_path, show, 5)
    g = s["health"]["governor"]
    assert g["mode"] == "off" and g["changes"] == 0 and g["given_up"] == []
    assert g["settings"] == {"seg_every": 1, "render_scale": 1.0, "model_every": 1}
    assert "governor: off in the show file" in stdout


def test_pinned_knobs_stay_pinned_and_it_says_when_nothing_is_left(tmp_path: Path, loaded: None) -> None:
    """Segmentation on (the chroma key: no model file needed), render scale pinned: segmentation is made
    sparser, down to the show's declared limit, never off; then it says even that does not fit, in the
    stats, the command's last lines, the HUD and `check`."""
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    tail = ('[params]\n"seg/mode" = "chroma"\n"mix/mode" = "person"\n'
            '[governor]\nrender_scale = 1.0\nseg_every_max = 2\nmodel_every = 1')
    show = small_show(tmp_path, source=SOURCE_30, model=model, tail=tail)
    s, stdout = rehearse(tmp_path, show, 8)
    g = s["health"]["governor"]
    assert g["settings"] == {"seg_every": 2, "render_scale": 1.0, "model_every": 1}
    assert [h["step"] for h in g["history"]] == ["segmentation every 2 frames"]
    assert g["cheapest_too_slow"]
    assert s["segmented_frames"] > 0, "segmentation is never turned off"
    assert "governor: even the cheapest settings do not fit: " in stdout
    r = run_cli(["check", show], tmp_path)
    assert ("governor: auto; when frames do not fit the source's rate it gives up, in order: "
            "segmentation every 2 frames; pinned: ") not in r.stdout  # render scale 1.0 is no loss
    assert "it gives up, in order: segmentation every 2 frames\n" in r.stdout, r.stdout
    assert "this CPU): even the cheapest settings do not fit: " in r.stdout, r.stdout


def test_the_hud_says_what_was_given_up(tmp_path: Path, loaded: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.scenarios.conftest import hud_after

    monkeypatch.setenv("INSTALLATION_STATE_DIR", str(tmp_path / "state-root"))
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    show = small_show(tmp_path, source=SOURCE_30, model=model)
    lines = hud_after(show, 7.0)
    said = [ln for ln in lines if ln.startswith("governor")]
    assert said and said[0].startswith("governor: gave up render scale"), lines


def test_a_video_recorded_under_lockstep_is_untouched(tmp_path: Path, loaded: None) -> None:
    """--lockstep processes every frame whatever it costs: the governor stays out of it."""
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    show = small_show(tmp_path, source=SOURCE_30, model=model)
    s, stdout = rehearse(tmp_path, show, 4, "--lockstep")
    g = s["health"]["governor"]
    assert g["changes"] == 0 and g["why_idle"] == "--lockstep processes every frame"
    assert "governor: --lockstep processes every frame" in stdout


def test_the_status_page_and_osc_status_say_it_while_the_show_plays(tmp_path: Path, loaded: None) -> None:
    """Over real sockets: /api/status carries the governor's figures, /status/governor its line."""
    import signal
    import socket
    import time
    import urllib.request

    from pythonosc.osc_message import OscMessage, ParseError

    from tests.scenarios.conftest import free_tcp_port, free_udp_port, start_cli

    feedback = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feedback.bind(("127.0.0.1", 0))
    feedback.settimeout(0.5)
    model = flat_model(tmp_path / "flat", (200, 40, 160))
    show = small_show(tmp_path, source=SOURCE_30, model=model, osc='host = "127.0.0.1"\noscquery_port = 0',
                      tail=DRAW_ONLY)
    web = free_tcp_port()
    proc = start_cli(["rehearse", show, "--headless", "--seconds", 60, "--osc-port", free_udp_port(),
                      "--web-port", web, "--osc-feedback", f"127.0.0.1:{feedback.getsockname()[1]}"], tmp_path)
    try:
        said, status = "", {}
        t_end = time.monotonic() + 40
        while time.monotonic() < t_end and not (said.startswith("governor: gave up render scale 0.5")
                                                and status.get("governor", {}).get("given_up")):
            try:
                msg = OscMessage(feedback.recv(65536))
                if msg.address == "/status/governor":
                    said = str(msg.params[0])
            except (TimeoutError, ParseError):
                pass  # nothing yet, or a bundle
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/status", timeout=2) as r:
                    status = json.loads(r.read())
            except OSError:
                pass  # not listening yet
        assert said.startswith("governor: gave up render scale 0.5; late: "), said
        g = status["governor"]
        assert g["given_up"] == ["render scale 0.5"] and g["settings"]["render_scale"] == 0.5, g
        assert g["why"].startswith("late: ") and g["downs"] >= 2
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        feedback.close()


def test_a_slow_model_paints_beside_the_frames_on_every_3rd_and_each_frame_is_shown(tmp_path: Path) -> None:
    """A model of ~80 ms (timed on this CPU) against a 30 fps source: in line, the frames wait for it; with
    the model on every 3rd frame it paints on its lane and the frames go on at the source's rate, each with
    its own capture time, the model's layer older (model_age)."""
    model = slow_model(tmp_path / "slow", 80.0)
    played = {}
    for every in (1, 3):
        (tmp_path / str(every)).mkdir()
        show = small_show(tmp_path / str(every), source=SOURCE_30, model=model,
                          tail=f'[governor]\nmode = "off"\nmodel_every = {every}')
        played[every], _ = rehearse(tmp_path / str(every), show, 5)
    inline, lane = played[1], played[3]
    # in line the frames wait for the model: visibly slower, not by a set ratio (with two busy loops beside
    # the test, in line once played 20 fps against the lane's 30, where a ratio of 1.6 was asked)
    assert inline["fps_mean"] < 0.85 * lane["fps_mean"], (inline["fps_mean"], lane["fps_mean"])
    assert lane["fps_mean"] >= 0.8 * 30, lane["fps_mean"]
    c = lane["counters"]
    assert c["frames_inferred"] >= 10 and c["frames_between"] >= 2 * c["frames_inferred"] - 5, c
    assert lane["stage_ms"]["model_age"]["p50"] > lane["latency_ms"]["p50"] + 40.0, "the model's layer is older"
    assert lane["latency_ms"]["p95"] < 2 * 1000 / 30, "no frame waits for the model"
    assert "frames_between" not in inline["counters"] and sum(lane["faults"].values()) == 0


def test_a_first_run_with_a_slow_model_begins_with_the_model_on_every_2nd_frame(tmp_path: Path) -> None:
    model = slow_model(tmp_path / "slow", 80.0)
    show = small_show(tmp_path, source=SOURCE_30, model=model)
    stats, _ = rehearse(tmp_path, show, 3)
    g = stats["health"]["governor"]
    assert g["history"][0]["dir"] == "start" and g["history"][0]["step"].startswith("model every 2 frames"), g
    assert "trial inference took" in g["history"][0]["why"]
    assert stats["counters"]["frames_between"] > 0
