"""A wheel that runs anywhere: built from the project, installed (not editable) into a folder of its own,
run from another folder. Its shaders, show files and default model travel inside it; the sample clip is
made in the user's cache folder, since no repository's media/ is there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEGMENTERS = ROOT / "models" / "segmenters"
needs_selfie = pytest.mark.skipif(not (SEGMENTERS / "selfie_segmentation.tflite").is_file(),
                                  reason="selfie model not fetched (scripts/fetch_segmenters.py)")


def _source_copy(dest: Path) -> Path:
    """What a build reads, copied (the build's own build/ and egg-info stay out of the checkout)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "segmenters", "*.engine")
    for name in ("installation", "shaders", "show_configs", "models"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@needs_selfie
def test_the_wheel_rehearses_from_another_folder(tmp_path: Path) -> None:
    src = _source_copy(tmp_path / "src")
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=180)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("installation-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("installation/shaders/composite.frag", "installation/show_configs/default.toml",
              "installation/models/default/model.onnx", "installation/models/default/model.toml",
              "installation/models/leaves/model.onnx", "installation/models/bloom/model.toml",
              "installation/core/paths.py", "installation/app.py"):
        assert f in names, f
    assert not any("segmenters" in n for n in names)

    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=180)
    assert inst.returncode == 0, inst.stdout + inst.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(PYTHONPATH=str(target), XDG_CACHE_HOME=str(cache), INSTALLATION_STATE_DIR="",
               INSTALLATION_SEGMENTERS_DIR=str(SEGMENTERS))  # what scripts/fetch_segmenters.py fetched
    where = subprocess.run([sys.executable, "-c", "import installation; print(installation.__file__)"],
                           capture_output=True, text=True, env=env, cwd=elsewhere, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr

    run = subprocess.run([sys.executable, "-m", "installation.cli", "rehearse", "--headless", "--frames", "30"],
                         capture_output=True, text=True, env=env, cwd=elsewhere, timeout=240)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "default: playing video sample_person_1280x720.mp4" in out, out
    card = tomllib.loads((ROOT / "models" / "default" / "model.toml").read_text())
    assert f"model: {card['name']}" in out, out  # the installed default model, by its card's name
    assert "30 frames" in out and "faults 0" in out, out
    assert (cache / "installation" / "sample_person_1280x720.mp4").is_file()
    assert not (elsewhere / "media").exists() and not (target / "media").exists()
