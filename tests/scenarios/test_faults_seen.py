"""Faults the room would otherwise never hear about: a segmentation model that is missing, a model that
fails on every frame. The show keeps presenting; the stats JSON, the heartbeat file and the log say
what went wrong, the log once (with the traceback for a code or model fault), the counters every time."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import small_show
from tests.scenarios.conftest import INSTALLATION, _card, _save_graph, cli_env, frames_of, identity_model, make_clip


def rehearse(tmp_path: Path, show: Path, seconds: float, env: dict[str, str] | None = None
             ) -> tuple[subprocess.CompletedProcess[str], dict, list[np.ndarray]]:
    clip = make_clip(tmp_path / "clip.mp4", frames=60)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    r = subprocess.run([INSTALLATION, "rehearse", str(show), "--headless", "--video", str(clip), "--seconds",
                        str(seconds), "--record", str(out), "--stats", str(stats)], capture_output=True, text=True,
                       timeout=120, env={**cli_env(tmp_path), **(env or {})}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return r, json.loads(stats.read_text()), frames_of(out)


def test_a_missing_selfie_model_is_counted_and_the_show_goes_on(tmp_path: Path) -> None:
    empty = tmp_path / "no-segmenters"
    empty.mkdir()
    show = small_show(tmp_path, name="noseg", model=identity_model(tmp_path / "models" / "same"),
                      tail='[params]\n"seg/mode" = "selfie"')
    r, stats, frames = rehearse(tmp_path, show, 3.0, {"INSTALLATION_SEGMENTERS_DIR": str(empty)})
    assert stats["frames_presented"] >= 15 and len(frames) >= 15, "pictures keep coming"
    assert np.mean([f.mean() for f in frames]) > 20, "and they are the camera's, not black"
    assert stats["faults"].get("segment", 0) >= stats["segment_failures"] >= 10, stats["faults"]
    assert "segment" in stats["last_fault"] and "selfie segmentation model not found" in stats["last_fault"]
    assert stats["health"]["faults"]["segment"] >= 10 and stats["health"]["segment_failures"] >= 10
    beat = json.loads((tmp_path / "state-root" / "noseg" / "heartbeat.json").read_text())
    assert beat["faults"].get("segment", 0) >= 1, "the heartbeat a supervisor reads says so too"
    assert r.stderr.count("selfie segmentation model not found") == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, "a missing file is the user's to fetch: a message, no traceback"


def failing_model(folder: Path, size: int = 64) -> Path:
    """A valid graph that raises on every run: a Reshape to a shape its input can't have."""
    from onnx import helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 3, size + 1, size], np.int64), "shape")
    _save_graph(folder / "model.onnx", [helper.make_node("Reshape", ["input", "shape"], ["output"])], [shape], size)
    return _card(folder, size, folder.name, "plain")


def test_a_model_failing_every_frame_is_logged_once_with_its_traceback_and_counted_each_time(
        tmp_path: Path) -> None:
    show = small_show(tmp_path, name="badmodel", model=failing_model(tmp_path / "models" / "bad"),
                      tail="[health]\nmodel_fail_after = 1000")  # never dropped: it fails on every frame
    r, stats, frames = rehearse(tmp_path, show, 3.0)
    assert stats["frames_presented"] >= 15 and len(frames) >= 15, "pictures keep coming"
    assert np.mean([f.mean() for f in frames]) > 20, "the camera shows through"
    assert stats["counters"].get("frames_inferred", 0) == 0
    assert stats["faults"]["model"] >= 0.8 * stats["frames_presented"], (stats["faults"], stats["frames_presented"])
    assert r.stderr.count("Traceback (most recent call last)") == 1, r.stderr[-4000:]
    assert "Reshape" in r.stderr
    assert "[E:onnxruntime" not in r.stderr, "ONNX Runtime does not print its own line for every failing run"
