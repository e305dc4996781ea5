"""A wheel that plays anywhere: built from the project, installed (not editable) into a folder of its own with
`pip install --target`, run from another folder in a clean environment (its own HOME and cache, no screen,
nothing pointing back at the repository). Its shaders, show files, looks and the two selfie segmentation
models travel inside it; the sample clip is made in the user's cache folder, since no repository's media/
is there. The default show and the person show both play, and their recordings are judged."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_names_this_cpu, frames_of

from installation.media.sample import BACKDROP_RGB
from installation.show.governor import GovernorConfig

ROOT = Path(__file__).resolve().parent.parent
SEGMENTERS = ("selfie_segmentation.tflite", "selfie_segmentation_landscape.tflite")


def _source_copy(dest: Path) -> Path:
    """What a build reads, copied (the build's own build/ and egg-info stay out of the checkout)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.engine", ".trt_cache")
    for name in ("installation", "shaders", "show_configs", "models"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the --target folder the wheel was installed into, the wheel)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    wheels = tmp / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("installation-*.whl")
    target = tmp / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=180)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    return target, wheel


def _clean_env(target: Path, home: Path) -> dict[str, str]:
    """What a new user's shell gives: PATH, a home of its own, the installed package; no screen, no
    INSTALLATION_* variable (no segmenters folder, no state folder, no backend) pointing anywhere."""
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(target), "XDG_CACHE_HOME": str(home / ".cache")}


def test_the_wheel_carries_the_runtime_files_and_the_segmenters_with_their_licence(installed) -> None:
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("installation/shaders/composite.frag", "installation/show_configs/default.toml",
              "installation/show_configs/person.toml",
              "installation/models/default/model.onnx", "installation/models/default/model.toml",
              "installation/models/leaves/model.onnx", "installation/models/bloom/model.toml",
              "installation/models/segmenters/NOTICE", "installation/models/segmenters/LICENSE",
              "installation/core/paths.py", "installation/app.py"):
        assert f in names, f
    with zipfile.ZipFile(wheel) as z:
        for name in SEGMENTERS:  # byte for byte the repository's (models/segmenters/NOTICE: their origin)
            assert z.read(f"installation/models/segmenters/{name}") == (ROOT / "models" / "segmenters" / name
                                                                        ).read_bytes()
        notice = z.read("installation/models/segmenters/NOTICE").decode()
        assert "Apache License, Version 2.0" in notice and "mediapipe 0.10.21" in notice
        assert "Apache License" in z.read("installation/models/segmenters/LICENSE").decode()


# how a message would send somebody to run a file of the repository (a generated layout may still say which
# script generated it, and a comment where a file's twin lives in a checkout)
RUN_A_SCRIPT = re.compile(r"(python3? |run |with `|sh )`?(\./)?scripts/|scripts/(setup|fetch_|make_sample)")


def test_no_message_sends_a_wheel_user_to_a_repository_script(installed) -> None:
    target, _ = installed
    for py in (target / "installation").rglob("*.py"):
        for n, line in enumerate(py.read_text().splitlines(), 1):
            assert not RUN_A_SCRIPT.search(line), f"{py.relative_to(target)}:{n}: {line.strip()}"


@pytest.mark.parametrize("show", ["default", "person"])
def test_the_wheel_rehearses_from_another_folder(installed, tmp_path: Path, show: str) -> None:
    target, _ = installed
    env = _clean_env(target, tmp_path / "home")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([sys.executable, "-c", "import installation; print(installation.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr

    rec, stats = tmp_path / "shown.mp4", tmp_path / "stats.json"
    run = subprocess.run([sys.executable, "-m", "installation.cli", "rehearse", show, "--headless", "--frames", "30",
                          "--record", str(rec), "--stats", str(stats)],
                         capture_output=True, text=True, env=env, cwd=elsewhere, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert f"{show}: playing video sample_person_1280x720.mp4" in out, out
    look = "default" if show == "default" else "bloom"
    card = tomllib.loads((ROOT / "models" / look / "model.toml").read_text())
    assert f"model: {card['name']}" in out, out  # the installed look, by its card's name
    assert "30 frames" in out and "faults 0" in out, out
    assert "Traceback" not in out and "scripts/" not in out, out
    assert (tmp_path / "home" / ".cache" / "installation" / "sample_person_1280x720.mp4").is_file()
    assert not (elsewhere / "media").exists() and not (target / "media").exists()

    s = json.loads(stats.read_text())
    assert s["frames_presented"] == 30 and not s["faults"], s["faults"]
    assert_names_this_cpu(s["cpu"])  # the figures name the machine they came from
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_of(rec)]
    assert len(frames) >= 25, len(frames)
    pic = np.stack(frames).astype(np.float32)
    assert pic.mean() > 20 and pic.std() > 10, "a picture, not a black or flat frame"
    if show == "person":
        # the selfie model found the person: every frame segmented (every Nth where the governor gave that up
        # on a loaded machine, never sparser than its floor), and the look paints the person only, so the
        # picture's top corners (backdrop) stay the camera's blue-grey paper while its lower middle (the
        # person, walking left and right) is painted
        sparsest = GovernorConfig().seg_every_max
        assert s["segmented_frames"] >= 30 // sparsest - 1 and s["segment_failures"] == 0, s
        cols = np.flatnonzero(pic.max(axis=(0, 1, 3)) > 10)  # the square picture between black side bars
        box = pic[:, :, cols[0]: cols[-1] + 1]
        h, w = box.shape[1:3]
        corners = np.concatenate([box[:, : h // 8, : w // 8], box[:, : h // 8, -w // 8:]], axis=2)
        backdrop = corners.reshape(-1, 3).mean(axis=0)
        assert np.abs(backdrop - BACKDROP_RGB).max() < 25, backdrop
        person = box[:, h // 2:, w // 4: 3 * w // 4].reshape(-1, 3)
        assert np.abs(person - BACKDROP_RGB).max(axis=1).mean() > 30, "somebody stands in the middle, painted"
