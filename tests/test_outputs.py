"""The output stage through the real command: virtual cameras (absent here), bad [[output]] tables, the
live switch in the address map, and a missing device that never stops the show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.media.outputs import list_virtual_cameras

INSTALLATION = str(Path(sys.executable).parent / "installation")
HAS_LOOPBACK = bool(list_virtual_cameras()[0])

SHOW = """
name = "outputs"
[source]
kind = "synthetic"
width = 160
height = 96
[render]
width = 160
height = 96
content_size = 64
[osc]
enabled = false
[params]
"pre/flip" = false
"""


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INSTALLATION_STATE_DIR": ""}
    return subprocess.run([INSTALLATION, *args], capture_output=True, text=True, timeout=timeout, env=env)


def show(tmp: Path, outputs: str) -> Path:
    path = tmp / "outputs.toml"
    path.write_text(SHOW + outputs)
    return path


@pytest.mark.skipif(HAS_LOOPBACK, reason="this machine has a v4l2loopback device")
def test_check_says_clearly_that_there_is_no_virtual_camera(tmp_path: Path) -> None:
    r = run("check", str(show(tmp_path, '[[output]]\nkind = "virtual_camera"\nname = "webcam"\n')))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    vc = next(ln for ln in lines if ln.startswith("virtual cameras:"))
    assert "v4l2loopback" in vc and "not loaded" in vc, vc
    assert any(ln.startswith("output webcam (output[0]): off until a v4l2loopback device exists") for ln in lines)
    assert any(ln.startswith("ndi sources:") for ln in lines)


@pytest.mark.skipif(HAS_LOOPBACK, reason="this machine has a v4l2loopback device")
def test_a_missing_virtual_camera_is_one_fault_and_the_show_plays_on(tmp_path: Path) -> None:
    stats = tmp_path / "s.json"
    r = run("rehearse", str(show(tmp_path, '[[output]]\nkind = "virtual_camera"\nname = "webcam"\n')),
            "--headless", "--seconds", "7", "--stats", str(stats))
    assert r.returncode == 0, r.stderr
    s = json.loads(stats.read_text())
    assert s["fps_mean"] > 20  # the show kept its pace
    assert s["faults"] == {"output": 1}  # retried every few seconds, counted and logged once
    assert r.stderr.count("No v4l2 loopback device found") == 1, r.stderr
    # while it can't open, nothing is read back for it (only the first try and one retry were fed)
    assert s["counters"].get("output_readbacks", 0) <= 2


@pytest.mark.skipif(not HAS_LOOPBACK, reason="no v4l2loopback device here (sudo modprobe v4l2loopback)")
def test_the_virtual_camera_shows_the_presented_picture(tmp_path: Path) -> None:
    import subprocess as sp

    device = list_virtual_cameras()[0][0].split()[0]
    path = show(tmp_path, f'[[output]]\nkind = "virtual_camera"\ndevice = "{device}"\n')
    proc = sp.Popen([INSTALLATION, "rehearse", str(path), "--headless", "--seconds", "6", "--record",
                     str(tmp_path / "out.mp4")], env={**os.environ, "INSTALLATION_STATE_DIR": ""})
    try:
        cap = cv2.VideoCapture(device, cv2.CAP_V4L2)
        got = None
        for _ in range(120):
            ok, f = cap.read()
            if ok:
                got = f
        cap.release()
    finally:
        proc.wait(timeout=30)
    assert got is not None and got.shape[:2] == (96, 160)
    assert float(np.abs(got.astype(int) - got.mean()).mean()) > 1  # a picture, not a flat colour


@pytest.mark.parametrize("table, key, expected", [
    ('kind = "spout"', "output[0].kind", "'ndi' or 'virtual_camera'"),
    ('kind = "ndi"\nname = "my out"', "output[0].name", "letters, digits, _ and -"),
    ('kind = "ndi"\nsize = [8, 8]', "output[0].size", "[width, height], each 16..7680"),
    ('kind = "ndi"\n[[output]]\nkind = "ndi"', "output[1].name", "a name of its own for each output"),
    ('kind = "ndi"\nrate = -1', "output[0].rate", ">= 0"),
])
def test_bad_output_tables_name_file_key_and_expectation(tmp_path: Path, table: str, key: str,
                                                         expected: str) -> None:
    path = show(tmp_path, f"[[output]]\n{table}\n")
    r = run("check", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(path.name) in r.stderr and key in r.stderr and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_each_output_has_its_live_switch_in_the_address_map(tmp_path: Path) -> None:
    path = show(tmp_path, '[[output]]\nkind = "ndi"\nname = "wall"\n[[output]]\nkind = "virtual_camera"\n'
                          'on = false\n[midi.map]\n"cc 1 20" = "output/wall/on"\n')
    r = run("osc-map", str(path))
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.startswith("/output/")}
    assert set(lines) == {"/output/wall/on", "/output/virtual_camera/on"}
    assert "bool" in lines["/output/wall/on"]
