"""The workshop as docs/workshop.md writes it, at a tiny size: takes recorded from clips standing in for the
camera (into one folder twice, and into a folder per person), a dataset built from the folder of folders,
a model trained, exported and given a show by `show new`, `check` saying it is ready, and a rehearsal
recorded with the new model: the person repainted, the room left as the camera saw it. Every command's
output goes to a pipe, as in a log: no carriage-return floods, no third-party lines."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import cv2
import numpy as np

from installation.core.chatter import is_chatter
from tests.scenarios.conftest import INSTALLATION, cli_env, frames_of

GREEN = (0, 177, 64)  # RGB: the chroma key's default colour
W, H = 160, 90


def person_clip(path: Path, shirt: tuple[int, int, int], n: int = 20) -> Path:
    """A person on chroma green, swaying a little round the middle of the frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (W, H))
    for i in range(n):
        img = np.zeros((H, W, 3), np.uint8)
        img[:] = GREEN
        cx = W // 2 + round(20 * np.sin(i / 2))
        cv2.ellipse(img, (cx, 66), (14, 30), 0, 0, 360, shirt, -1)
        cv2.circle(img, (cx, 26), 10, (230, 180, 150), -1)
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def logged(args: list, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`installation ARGS` with stdout and stderr to pipes, as a log file gets them: bytes judged as they
    came (text mode would turn each carriage return into a newline), then decoded."""
    r = subprocess.run([INSTALLATION, *map(str, args)], capture_output=True, timeout=timeout,
                       env=cli_env(tmp_path), cwd=tmp_path)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert "\r" not in out + err, f"{args[:2]}: a progress bar wrote carriage returns into a pipe: {err[-400:]!r}"
    noisy = [line for line in (out + err).splitlines() if is_chatter(line) or "[ WARN" in line]
    assert not noisy, noisy
    return subprocess.CompletedProcess(r.args, r.returncode, out, err)


def ok(args: list, tmp_path: Path, timeout: float = 120) -> str:
    r = logged(args, tmp_path, timeout)
    assert r.returncode == 0, f"{args[:2]}: {r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def camera_view(frame_bgr: np.ndarray, side: int) -> np.ndarray:
    """What the show makes of a camera frame (and what the doc's framing picture shows): mirrored, its
    central square, at the content's side."""
    h, w = frame_bgr.shape[:2]
    square = cv2.flip(frame_bgr, 1)[:, (w - h) // 2:(w - h) // 2 + h]
    return cv2.resize(square, (side, side), interpolation=cv2.INTER_LINEAR)


def test_the_workshop_as_written(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    anna = person_clip(clips / "anna.mp4", (200, 60, 40))
    bob = person_clip(clips / "bob.mp4", (40, 60, 200))
    takes = tmp_path / "takes"

    # 1. record: into one folder twice (the second session goes on numbering), then a folder per person
    for clip, folder in ((anna, "anna"), (anna, "anna"), (bob, "bob")):
        ok(["dataset", "record", "--camera", clip, "--out", takes / folder, "--takes", "1", "--seconds", "1.5",
            "--countdown", "0.2", "--no-preview"], tmp_path)
    assert sorted(p.relative_to(takes).as_posix() for p in takes.rglob("*.mp4")) == [
        "anna/take_001.mp4", "anna/take_002.mp4", "bob/take_001.mp4"]
    # the countdown did not use up the clip: each take has the clip's first 15 frames
    assert len(frames_of(takes / "anna" / "take_002.mp4")) == 15

    # 2. pair: the folder of folders
    out = ok(["dataset", "build", takes, "--out", "data/me", "--segment", "chroma", "--chain", "silhouette_edges",
              "--size", "64"], tmp_path)
    assert "3 videos in 2 folders" in out
    ds = tomllib.loads((tmp_path / "data/me/dataset.toml").read_text())
    assert ds["counts"]["pairs"] >= 16 and len(ds["sources"]) == 3

    # 3. train (tiny): seconds a picture and the estimated finish after the first epoch
    out = ok(["train", "data/me", "--out", "runs/me", "--width", "4", "--epochs", "2", "--set", "d_width=8"],
             tmp_path, timeout=180)
    assert re.search(r"epoch 1/2 .* \d+\.\d+ s a picture .* 1 epoch\(s\) left: about \d+ s, done near \d\d:\d\d",
                     out), out
    assert "next: installation export" in out

    # 4. export, with the next step named
    out = ok(["export", "runs/me/latest.pt", "--out", "models/me"], tmp_path)
    assert "next: installation quantize models/me" in out
    out = ok(["quantize", "models/me", takes, "--pictures", "16"], tmp_path)  # ONNX Runtime's calibrator is quiet
    assert "calibrating on 3 videos in 2 folders" in out and (tmp_path / "models/me/model.int8.onnx").is_file()

    # 5. a show for the model, one command away; `check` says it is ready
    ok(["show", "new", "me", "--model", "models/me", "--camera", takes / "anna" / "take_001.mp4"], tmp_path)
    show = tmp_path / "show_configs" / "me.toml"
    params = tomllib.loads(show.read_text())["params"]
    assert params["seg/mode"] == "chroma" and params["mix/mode"] == "person"  # the chain masks: the person show
    out = ok(["check", "me"], tmp_path)
    assert out.rstrip().endswith("ok") or "\nok\n" in out

    # ... and plays: the person repainted by the new model, the room as the camera saw it
    rec = tmp_path / "rehearsal.mp4"
    ok(["rehearse", "me", "--headless", "--lockstep", "--frames", "12", "--record", rec, "--no-osc",
        "--oscquery-port", "0", "--web-port", "0"], tmp_path)
    recorded, camera = frames_of(rec), frames_of(takes / "anna" / "take_001.mp4")
    assert len(recorded) >= 10
    side = recorded[0].shape[0]  # the content square, fitted to the 16:9 picture's height
    x0 = (recorded[0].shape[1] - side) // 2
    person_diff, room_diff = [], []
    for shown, seen in zip(recorded[2:10], camera[2:10], strict=True):
        view = camera_view(seen, side).astype(np.int16)
        b, g, r = (view[..., c] for c in range(3))
        person = cv2.erode(((g < r) | (g < b)).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        room = cv2.erode((g > r + 60).astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
        diff = np.abs(shown[:, x0:x0 + side].astype(np.int16) - view).mean(axis=2)
        person_diff.append(diff[person].mean())
        room_diff.append(diff[room].mean())
    assert min(person_diff) > 25, f"the person is not repainted: {person_diff}"
    assert max(room_diff) < 12, f"the room is not the camera's: {room_diff}"


def test_run_without_a_camera_fails(tmp_path: Path) -> None:
    show = tmp_path / "nocam.toml"
    show.write_text('name = "nocam"\n[source]\nkind = "camera"\ncamera = 9\n[render]\nwidth = 160\nheight = 90\n'
                    "content_size = 64\n[osc]\nenabled = false\n")
    r = logged(["run", show, "--headless", "--seconds", "2", "--web-port", "0", "--oscquery-port", "0"], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "camera 9 never delivered a frame" in r.stderr


def test_the_selfie_segmenter_and_check_say_nothing_of_their_libraries(tmp_path: Path) -> None:
    """TensorFlow Lite, absl/glog and ALSA print to the process's stderr from C++; our commands keep it out
    of their output (segment, dataset build with the selfie model, check of the person show)."""
    import pytest
    import skimage.data

    from installation.vision.segment import DEFAULT_MODELS_DIR, SELFIE_MODELS

    if not all((DEFAULT_MODELS_DIR / f).is_file() for f in SELFIE_MODELS.values()):
        pytest.skip("selfie models not in place")
    pics = tmp_path / "pics"
    pics.mkdir()
    cv2.imwrite(str(pics / "astronaut.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    ok(["segment", pics, "--out", "masks"], tmp_path)
    assert (tmp_path / "masks" / "astronaut.png").is_file()
    ok(["dataset", "build", pics, "--out", "ds", "--segment", "selfie", "--chain", "silhouette", "--size", "64",
        "--val", "0"], tmp_path)
    r = logged(["check", "person"], tmp_path)  # exit 1 where there is no camera; the output is what is judged
    assert "midi ports:" in r.stdout and "ALSA lib" not in r.stderr
