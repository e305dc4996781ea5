"""Long runs across sessions: a run killed without warning goes on from its last timed checkpoint with its
step count, wall time and a record of each process that trained it; a resume with other pictures or another
look's settings is refused, naming the file and what differs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.cli import main
from installation.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def one_thread(torch_one_thread):
    yield


def pictures(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"p{i:02d}.png"), cv2.GaussianBlur(img, (7, 7), 2))
    return folder


def tiny_command(folder: Path, out: Path, repeat: int) -> list[str]:
    return ["train", str(folder), "--from-targets", "--chain", "grey_blur_downscale", "--size", "32",
            "--width", "4", "--epochs", "1", "--out", str(out), "--set", "d_width=4", "--set", f"repeat={repeat}",
            "--no-progress"]


def test_a_killed_run_resumes_with_its_step_count(tmp_path):
    folder = pictures(tmp_path / "pics", 3, seed=1)
    run = tmp_path / "run"
    latest = run / "latest.pt"
    # 3 pictures x 400 = 300 steps in the one epoch; a checkpoint after every 0.5 s of wall time
    cmd = [sys.executable, "-m", "installation.training.cli", *tiny_command(folder, run, 400),
           "--set", "save_every=0.5"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not latest.is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert latest.is_file(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint"
        proc.send_signal(signal.SIGKILL)  # no warning, no save on the way out: what a session's end does
    finally:
        proc.kill()
        proc.wait()
    cut = load_checkpoint(latest)
    assert cut["epoch"] == 0 and 0 < cut["step"] == cut["global_step"] < 300  # mid-epoch, by the clock
    assert cut["seconds"] >= 0.5 and len(cut["runs"]) == 1 and cut["runs"][0]["steps"] == cut["global_step"]

    assert main(["train", "--resume", str(latest), "--no-progress"]) == 0
    done = load_checkpoint(latest)
    assert (done["epoch"], done["step"], done["global_step"]) == (1, 0, 300)
    first, second = done["runs"]
    assert first["steps"] == cut["global_step"] and first["started"] == cut["runs"][0]["started"]
    assert second["from_step"] == cut["global_step"] and second["steps"] == 300 - cut["global_step"]
    assert done["seconds"] > cut["seconds"]
    # the card says the whole run: both processes' steps and wall time
    assert main(["export", str(latest), "--out", str(tmp_path / "model")]) == 0
    card = tomllib.loads((tmp_path / "model" / "model.toml").read_text())["provenance"]
    assert (card["epochs"], card["training_steps"], card["training_runs"]) == (1, 300, 2)
    assert card["training_seconds"] == round(done["seconds"], 1)


def test_resume_with_other_pictures_is_refused(tmp_path, capsys):
    folder = pictures(tmp_path / "pics", 3, seed=2)
    run = tmp_path / "run"
    assert main(tiny_command(folder, run, 2)) == 0
    latest = run / "latest.pt"
    before = load_checkpoint(latest)
    assert [name for name, *_ in before["dataset_fingerprint"]] == ["p00.png", "p01.png", "p02.png"]
    capsys.readouterr()

    moved = tmp_path / "moved"
    folder.rename(moved)  # the same pictures elsewhere: fine
    assert main(["train", str(moved), "--resume", str(latest), "--epochs", "2", "--no-progress"]) == 0
    capsys.readouterr()

    other = pictures(tmp_path / "other", 4, seed=3)
    assert main(["train", str(other), "--resume", str(latest), "--epochs", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(latest) in err and "not the one this run learnt from" in err and "not in the run: p03.png" in err
    assert "changed: p00.png, p01.png, p02.png" in err and "Traceback" not in err  # same names, other pictures
    assert load_checkpoint(latest)["epoch"] == 2  # untouched


def test_train_looks_refuses_a_run_of_other_settings(tmp_path):
    photos = tmp_path / "photos"
    water = pictures(photos / "sets" / "water", 2, seed=4)
    runs = tmp_path / "runs"
    assert main(tiny_command(water, runs / "water", 1)) == 0  # width 4 at 32 px: not the water look
    proc = subprocess.run([sys.executable, "scripts/train_looks.py", "train", "water", "--runs", str(runs),
                           "--photos", str(photos)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert str(runs / "water" / "latest.pt") in err and "refused" in err
    assert "width: run 4, look 16" in err and "size: run 32, look 256" in err and "chain: run" in err
    assert "Traceback" not in err


def test_train_looks_without_photographs_says_where_to_get_them(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/train_looks.py", "train", "bloom", "--runs", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"no photographs at {tmp_path / 'photos' / 'sets' / 'bloom'}" in proc.stderr
    assert "fetch_photos.py --out" in proc.stderr

