"""Live values saved in the state folder: a start names the ones it restored over the show file, `--fresh`
ignores them for one run, `installation state reset` removes them (and keeps the presets), `check` lists them."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np

from tests.conftest import small_show
from tests.scenarios.conftest import (
    flat_model,
    frames_of,
    free_udp_port,
    mean_rgb,
    osc_send,
    run_cli,
    start_cli,
    wait_presenting,
)

GREY = 200  # the flat model's colour; brightness scales it


def show_with(tmp_path: Path, brightness: float, port: int) -> Path:
    model = flat_model(tmp_path / "models" / "grey", (GREY, GREY, GREY))
    return small_show(tmp_path, name="tuned", model=model, osc=f"port = {port}\noscquery_port = 0",
                      tail=f'[params]\n"hud/show" = false\n"colour/brightness" = {brightness}')


def picture_level(video: Path) -> float:
    """The mean grey of the model's square in the middle of the recorded frames (letterbox bars left out)."""
    frames = frames_of(video)
    assert len(frames) >= 10, f"only {len(frames)} frames recorded"
    return float(np.mean([mean_rgb(f[25:65, 60:100]).mean() for f in frames[3:]]))


def test_restored_values_are_named_fresh_ignores_them_reset_removes_them(tmp_path: Path) -> None:
    port = free_udp_port()
    show = show_with(tmp_path, 1.0, port)
    live = tmp_path / "state-root" / "tuned" / "live.json"
    # 1. tune brightness live over OSC; a clean stop saves it
    proc = start_cli(["rehearse", show, "--headless", "--seconds", "60"], tmp_path)
    try:
        wait_presenting(tmp_path, show, proc)
        t_end = time.monotonic() + 30
        while not (live.is_file() and json.loads(live.read_text())["values"].get("colour/brightness") == 0.25):
            assert time.monotonic() < t_end, "the tuned value was never saved"
            osc_send(port, "/colour/brightness", 0.25)
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    saved = json.loads(live.read_text())["values"]
    assert saved == {"colour/brightness": 0.25}, saved  # only what was tuned, not every value of the show
    presets = live.parent / "presets"
    presets.mkdir(exist_ok=True)
    (presets / "preset-01.json").write_text('{"values": {"colour/brightness": 0.5}}')

    # 2. the artist edits the show file; the next start says the saved value wins, and it does
    show = show_with(tmp_path, 0.6, port)
    rec = tmp_path / "restored.mp4"
    res = run_cli(["rehearse", show, "--headless", "--frames", "20", "--record", rec, "--no-osc"], tmp_path)
    assert res.returncode == 0, res.stderr
    line = next((ln for ln in res.stderr.splitlines() if "restored" in ln), "")
    assert "colour/brightness = 0.25" in line and "show file: 0.6" in line, res.stderr
    assert "--fresh" in line  # and how to get the show file's value
    restored = picture_level(rec)

    # 3. --fresh: the show file's value, for this run; the saved one stays on disk
    rec = tmp_path / "fresh.mp4"
    res = run_cli(["rehearse", show, "--headless", "--frames", "20", "--record", rec, "--no-osc", "--fresh"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "colour/brightness = 0.25" not in res.stderr and "starting fresh" in res.stderr
    fresh = picture_level(rec)
    print(f"\npicture level: restored 0.25 -> {restored:.1f}, fresh 0.6 -> {fresh:.1f} (model grey {GREY})")
    assert abs(restored - GREY * 0.25) < 15 and abs(fresh - GREY * 0.6) < 15
    assert live.is_file()

    # 4. check lists what a start would restore
    res = run_cli(["check", show], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "colour/brightness = 0.25" in res.stdout and "show file: 0.6" in res.stdout

    # 5. state reset removes the saved values, keeps the presets, says what it removed
    res = run_cli(["state", "reset", show], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "colour/brightness = 0.25" in res.stdout and str(live) in res.stdout
    assert not live.exists() and (presets / "preset-01.json").is_file()
    rec = tmp_path / "after-reset.mp4"
    res = run_cli(["rehearse", show, "--headless", "--frames", "20", "--record", rec, "--no-osc"], tmp_path)
    assert "colour/brightness = 0.25" not in res.stderr
    assert abs(picture_level(rec) - GREY * 0.6) < 15
    res = run_cli(["state", "reset", show], tmp_path)
    assert res.returncode == 0 and "nothing removed" in res.stdout
