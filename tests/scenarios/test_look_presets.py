"""Presets that the show file ships ([presets.N]) switch models with the crossfade: a preset recalled over
real UDP turns the recording from one model's picture to the other's; a bad slot is one line."""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path

from tests.conftest import small_show
from tests.scenarios.conftest import flat_model, frames_of, free_udp_port, osc_send, run_cli, start_cli, wait_presenting
from tests.scenarios.test_swap import RED, classify, runs

ROOT = Path(__file__).resolve().parents[2]


def test_a_declared_preset_crossfades_to_the_model_it_names(tmp_path: Path) -> None:
    red = flat_model(tmp_path / "models" / "red", RED)
    flat_model(tmp_path / "models" / "blue", (20, 20, 230))
    port = free_udp_port()
    show = small_show(tmp_path, name="declared", model=red,
                      osc=f'enabled = true\nhost = "127.0.0.1"\nport = {port}\noscquery_port = 0',
                      tail='[presets.1]\n"model/select" = "blue"\n"model/crossfade" = 1.0\n')
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    proc = start_cli(["rehearse", show, "--headless", "--seconds", 6, "--record", out, "--stats", stats,
                      "--fresh"], tmp_path)
    try:
        wait_presenting(tmp_path, show, proc)
        time.sleep(1.0)
        osc_send(port, "/preset/recall", 1)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    labels = classify(frames_of(out))
    assert runs([c for c in labels if c != "?"]) == "rmb", "".join(labels)
    s = json.loads(stats.read_text())
    assert s["model"] == "blue" and s["counters"]["model_swaps"] == 1
    assert not any((tmp_path / "state-root").rglob("preset-01.json"))  # recalled, never written


def test_a_bad_preset_slot_is_one_line(tmp_path: Path) -> None:
    show = small_show(tmp_path, tail='[presets.first]\n"model/select" = "blue"\n')
    r = run_cli(["check", show], tmp_path)
    assert r.returncode != 0
    assert "presets.first" in r.stderr and "slot number 1..99" in r.stderr and str(show) in r.stderr
    assert "Traceback" not in r.stderr
    show = small_show(tmp_path, tail='[presets.2]\n"model/selekt" = "blue"\n')
    r = run_cli(["check", show], tmp_path)
    assert r.returncode != 0 and "presets.2.model.selekt" in r.stderr and "Traceback" not in r.stderr


def test_the_default_show_ships_a_preset_for_each_look() -> None:
    cfg = tomllib.loads((ROOT / "show_configs" / "default.toml").read_text())
    assert cfg["model"]["path"] == "../models/default"
    looks = [cfg["presets"][str(n)]["model/select"] for n in (1, 2, 3)]
    assert looks == ["default", "leaves", "bloom"]
    for look in looks:
        assert (ROOT / "models" / look / "model.onnx").is_file() and (ROOT / "models" / look / "model.toml").is_file()
