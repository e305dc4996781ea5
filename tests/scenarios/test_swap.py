"""Model swaps as the room sees them: `/model/select` over real UDP OSC while `installation rehearse`
records; the recording must show the old model, a blend, then the new one, and the stats no fault."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import small_show
from tests.scenarios.conftest import (
    flat_model,
    frames_of,
    free_udp_port,
    osc_send,
    run_cli,
    start_cli,
    wait_presenting,
)

RED, BLUE = (230, 20, 20), (20, 20, 230)


def centre_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """The mean RGB of a patch in the middle of the picture (the content is letterboxed: skip the bars)."""
    h, w = frame_bgr.shape[:2]
    patch = frame_bgr[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10]
    return patch.reshape(-1, 3).mean(axis=0)[::-1]


def colour_of(frame_bgr: np.ndarray) -> str:
    """'r', 'g' or 'b' for one model's flat colour, 'm' for red and blue visibly mixed, else '?'."""
    rgb = centre_rgb(frame_bgr)
    for name, i in (("r", 0), ("g", 1), ("b", 2)):
        if rgb[i] > 190 and np.delete(rgb, i).max() < 60:
            return name
    return "m" if rgb[0] > 45 and rgb[2] > 45 and rgb[1] < 60 else "?"


def classify(frames: list[np.ndarray]) -> list[str]:
    return [colour_of(f) for f in frames]


def osc_show(tmp_path: Path, model: Path, port: int, name: str = "swap", tail: str = "") -> Path:
    return small_show(tmp_path, name=name, model=model,
                      osc=f'enabled = true\nhost = "127.0.0.1"\nport = {port}\noscquery_port = 0', tail=tail)


def play_and_select(tmp_path: Path, show: Path, port: int, select: str, seconds: float, after_s: float,
                    extra: list[str] | None = None) -> tuple[list[str], dict, str]:
    """Rehearse `show` for `seconds`, send /model/select `select` `after_s` seconds after the first
    picture; (each recorded frame's class, the stats JSON, stderr)."""
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    proc = start_cli(["rehearse", show, "--headless", "--seconds", seconds, "--record", out, "--stats", stats,
                      *(extra or [])], tmp_path)
    try:
        wait_presenting(tmp_path, show, proc)
        time.sleep(after_s)
        osc_send(port, "/model/select", select)
        _, err = proc.communicate(timeout=seconds + 60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    return classify(frames_of(out)), json.loads(stats.read_text()), err


def runs(labels: list[str]) -> str:
    """The sequence of classes with repeats collapsed: 'rmb' for red, then mixed, then blue."""
    return "".join(c for i, c in enumerate(labels) if i == 0 or c != labels[i - 1])


@pytest.mark.parametrize("tail", ["", '[governor]\nmode = "off"\nmodel_every = 2'],
                         ids=["as-the-governor-says", "model-on-every-2nd-frame-with-its-lane"])
def test_a_model_swap_crossfades_from_red_through_a_blend_to_blue(tmp_path: Path, tail: str) -> None:
    red = flat_model(tmp_path / "models" / "red", RED)
    blue = flat_model(tmp_path / "models" / "blue", BLUE)
    port = free_udp_port()
    show = osc_show(tmp_path, red, port, tail=tail)
    seconds, fade = 8.0, 3.0
    labels, stats, _ = play_and_select(tmp_path, show, port, blue.name, seconds, 1.5,
                                         ["--set", f"model/crossfade={fade}"])
    seq = runs([c for c in labels if c != "?"])
    assert seq == "rmb", f"expected red, then mixed, then blue; got {seq!r} ({''.join(labels)})"
    mixed = labels.count("m")
    # the recording's own rate (whatever the recorder writes per second shown) sets what 3 s is in frames
    per_s = len(labels) / stats["duration_s"]
    assert 0.6 * fade * per_s <= mixed <= 1.4 * fade * per_s, \
        f"{mixed} mixed frames for a {fade} s fade at {per_s:.1f} recorded frames/s"
    assert sum(stats["faults"].values()) == 0, stats["faults"]
    assert stats["counters"].get("model_swaps") == 1
    assert stats["model"] == "blue"


def test_model_select_finds_names_in_the_shows_models_folder_and_retries_a_failed_name(tmp_path: Path) -> None:
    # a show and its models in a folder of their own: names resolve there, not in the repository's models/
    flat_model(tmp_path / "models" / "red", RED)
    flat_model(tmp_path / "models" / "blue", BLUE)
    port = free_udp_port()
    show = osc_show(tmp_path, Path("models/red"), port, name="names")  # relative: to the show file
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    proc = start_cli(["rehearse", show, "--headless", "--seconds", 9, "--record", out, "--stats", stats,
                      "--set", "model/crossfade=0"], tmp_path, cwd=tmp_path / "models")  # cwd must not matter
    try:
        wait_presenting(tmp_path, show, proc)
        time.sleep(1.0)
        osc_send(port, "/model/select", "blue")
        time.sleep(1.5)
        osc_send(port, "/model/select", "green")  # not there yet: the swap fails, blue keeps playing
        time.sleep(1.5)
        flat_model(tmp_path / "models" / "green", (20, 230, 20))
        osc_send(port, "/model/select", "green")  # the same name again: tried again, not ignored
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    labels = classify(frames_of(out))
    assert runs([c for c in labels if c != "?"]) == "rbg", "".join(labels)
    s = json.loads(stats.read_text())
    assert s["model"] == "green" and s["counters"]["model_swaps"] == 2
    assert s["faults"] == {"model": 1}, s["faults"]  # the one failed swap, named in the log:
    assert "no model named 'green'" in err and str(tmp_path / "models") in err


def test_backend_torch_without_cuda_is_a_mistake_named_in_the_show(tmp_path: Path) -> None:
    import pytest

    from installation.inference.torch_backend import cuda_status

    if cuda_status()[0]:
        pytest.skip("this machine has CUDA: backend torch plays here")
    show = small_show(tmp_path, model=flat_model(tmp_path / "models" / "red", RED), tail="")
    show.write_text(show.read_text().replace("[model]\n", '[model]\nbackend = "torch"\n'))
    r = run_cli(["rehearse", show, "--headless", "--seconds", 1], tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"{show}: model.backend: backend torch runs on a CUDA GPU" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    show.write_text(show.read_text().replace('backend = "torch"', 'backend = "onnx"'))
    out = tmp_path / "out.mp4"
    r = run_cli(["rehearse", show, "--headless", "--frames", 5, "--record", out], tmp_path)
    assert r.returncode == 0, r.stderr
    assert classify(frames_of(out))[-1] == "r"
