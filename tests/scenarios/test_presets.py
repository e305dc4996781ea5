"""Presets as the room sees them: save a look over OSC, change it, recall it with a morph, and the
recorded picture glides back to the saved look over about preset/morph_s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import flat_model, frames_of, free_udp_port, osc_send, start_cli

MORPH_S = 2.0


def _centre_grey(frame_bgr: np.ndarray) -> float:
    """The mean of a patch in the middle of the letterboxed content (the model's flat colour, graded)."""
    h, w = frame_bgr.shape[:2]
    return float(frame_bgr[h // 2 - 10:h // 2 + 10, w // 2 - 10:w // 2 + 10].mean())


def test_recall_with_a_morph_glides_the_picture_back_to_the_saved_look(tmp_path: Path) -> None:
    model = flat_model(tmp_path / "models" / "grey", (200, 200, 200))
    show = small_show(tmp_path, name="presets", model=model, source=SYNTHETIC + "\nfps = 30",
                      osc='host = "127.0.0.1"\noscquery_port = 0')
    port = free_udp_port()
    out = tmp_path / "out.mp4"
    proc = start_cli(["rehearse", show, "--headless", "--seconds", "9", "--osc-port", port, "--record", out],
                     tmp_path)
    try:
        assert proc.stdout is not None
        assert "playing" in proc.stdout.readline()  # built: OSC is listening
        time.sleep(1.0)
        osc_send(port, "/preset/save", 1)  # the look as it is: brightness 1
        time.sleep(0.5)
        osc_send(port, "/colour/brightness", 0.2)  # a darker look
        osc_send(port, "/preset/morph_s", MORPH_S)
        time.sleep(2.0)
        osc_send(port, "/preset/recall", 1)
        _stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr

    preset = tmp_path / "state-root" / "presets" / "presets" / "preset-01.json"
    assert json.loads(preset.read_text())["values"]["colour/brightness"] == 1.0, "the saved look is on disk"

    frames = frames_of(out)
    fps = 30.0
    grey = np.array([_centre_grey(f) for f in frames])
    bright, dark = float(np.median(grey[: int(fps)])), float(grey.min())
    assert bright > 180 and dark < 60, (bright, dark)
    i_dark = int(np.argmin(grey))
    after = grey[i_dark:]
    back = np.flatnonzero(np.abs(after - bright) < 4)
    assert back.size, f"the picture never returned to the saved look ({bright:.0f}): {after[-5:]}"
    start = np.flatnonzero(after > dark + 4)[0]  # the morph's first visible step
    glide = after[start:back[0]]
    seconds = glide.size / fps
    assert 0.5 * MORPH_S <= seconds <= 1.5 * MORPH_S, f"the morph took {seconds:.2f} s of video, not ~{MORPH_S} s"
    assert np.all(np.diff(glide) > -3), "the glide goes one way: from the changed look to the saved one"
    mid = glide[glide.size // 2]
    assert dark + 20 < mid < bright - 20, f"halfway through the morph the picture is in between: {mid:.0f}"
    assert np.all(np.abs(grey[i_dark + back[0]:] - bright) < 4), "and it stays at the saved look"
