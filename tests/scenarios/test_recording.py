"""What `--record` writes: a video as long as the time shown, every source frame once under --lockstep,
and a clear line (no traceback) when the file can't be written."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import small_show
from tests.scenarios.conftest import frames_of, identity_model, make_clip, run_cli, slow_model


def video_length(path: Path) -> tuple[int, float]:
    """(decoded frames, frames a second the file says it plays at)."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return len(frames_of(path)), fps


def numbered_clip(path: Path, frames: int, fps: float = 30.0, size: int = 64) -> Path:
    """Frame i is one flat grey level, 20 + 7 * i: its index can be read back off the recording."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size, size))
    for i in range(frames):
        writer.write(np.full((size, size, 3), 20 + 7 * i, np.uint8))
    writer.release()
    return path


def test_a_recording_lasts_as_long_as_the_show_was_shown(tmp_path: Path) -> None:
    # ~80 ms a frame against a 30 fps clip: far fewer fresh pictures than source frames; the video must
    # still play for the 6 s that were shown, not for (fresh pictures / 30) s. The governor is off: it would
    # put the model on every 2nd frame, painting beside the frames, and every source frame would be shown
    model = slow_model(tmp_path / "slow", 80.0)
    show = small_show(tmp_path, model=model, tail='[governor]\nmode = "off"')
    clip = make_clip(tmp_path / "clip.mp4", frames=60)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    r = run_cli(["rehearse", show, "--headless", "--video", clip, "--seconds", 6, "--record", out,
                 "--stats", stats], tmp_path)
    assert r.returncode == 0, r.stderr
    n, fps = video_length(out)
    assert fps == 30.0
    assert 5.4 <= n / fps <= 6.6, f"{n} frames at {fps} fps = {n / fps:.2f} s for 6 s shown"
    s = json.loads(stats.read_text())
    assert s["recorded_frames"] == n
    assert s["recorded_rejected"] == 0
    # fewer pictures were made than the video has frames: the held ones are repeated, not skipped
    assert s["frames_presented"] < n
    assert f"recorded {n} frames" in r.stdout


def test_a_lockstep_recording_has_every_source_frame_once_in_order(tmp_path: Path) -> None:
    model = identity_model(tmp_path / "identity")
    show = small_show(tmp_path, model=model)
    clip = numbered_clip(tmp_path / "numbered.mp4", 24)
    out = tmp_path / "out.mp4"
    r = run_cli(["rehearse", show, "--headless", "--video", clip, "--lockstep", "--frames", 24, "--record", out,
                 "--set", "pre/flip=false"], tmp_path)
    assert r.returncode == 0, r.stderr
    frames = frames_of(out)
    assert len(frames) == 24
    # the centre of each recorded frame is the clip's frame of the same index (mp4 loses a few levels)
    levels = np.array([f[40:50, 75:85].mean() for f in frames])
    assert np.abs(levels - (20 + 7 * np.arange(24))).max() < 6, levels.round(1)


def test_an_unwritable_record_path_is_one_clear_line(tmp_path: Path) -> None:
    show = small_show(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = run_cli(["rehearse", show, "--headless", "--frames", 5, "--record", blocker / "out.mp4"], tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(blocker / "out.mp4") in errors[0], r.stderr
