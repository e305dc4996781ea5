"""NDI out and in, with the real runtime (ndi-python's libndi) and the real `installation` command.

A show started as a subprocess and this test process find each other through NDI's finder asking this
machine directly (installation/media/ndi.py adds 127.0.0.1 to the finder), so no mDNS daemon is needed. Where
NDI can't start at all the tests are skipped with the runtime's own reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import frames_of

INSTALLATION = str(Path(sys.executable).parent / "installation")
SIZE = 192


pytestmark = pytest.mark.usefixtures("needs_ndi")


def pattern(seed: int) -> np.ndarray:
    """A picture with large shapes (what a codec keeps): a gradient and coloured blocks, RGB."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    img = np.stack([xx * 200 + 30, yy * 180 + 40, (1 - xx) * 120 + 60], axis=2)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        x, y = rng.integers(0, SIZE - 48, 2)
        img[y:y + 48, x:x + 48] = rng.integers(0, 255, 3)
    return img.astype(np.uint8)


def show_file(tmp: Path, name: str, source: str, extra: str = "") -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(f"""
name = "{name}"
{source}
[render]
width = {SIZE}
height = {SIZE}
content_size = {SIZE}
[osc]
enabled = false
[params]
"pre/flip" = false
{extra}
""")
    return path


def still_clip(path: Path, rgb: np.ndarray, frames: int = 20) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (SIZE, SIZE))
    for _ in range(frames):
        w.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    w.release()
    return path


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INSTALLATION_STATE_DIR": ""}
    return subprocess.run([INSTALLATION, *args], capture_output=True, text=True, timeout=timeout, env=env)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_the_picture_sent_over_ndi_is_what_the_show_presented(tmp_path: Path) -> None:
    from installation.media.ndi import ndi_source

    name = f"ndi-out-{os.getpid()}"
    clip = still_clip(tmp_path / "still.mp4", pattern(1))
    path = show_file(tmp_path, name, f'[source]\nkind = "video"\nvideo = "{clip}"',
                     '[[output]]\nkind = "ndi"\nrate = 0')
    rx = ndi_source(name).start()  # this test's receiver: it waits for the show's sender to appear
    got: list[np.ndarray] = []

    def receive() -> None:
        t_end = time.monotonic() + 12
        while time.monotonic() < t_end and len(got) < 40:
            f = rx.recv(timeout=0.5)
            if f is not None:
                got.append(f.image)

    t = threading.Thread(target=receive)
    t.start()
    r = run("rehearse", str(path), "--headless", "--seconds", "6", "--record", str(tmp_path / "out.mp4"),
            "--stats", str(tmp_path / "stats.json"))
    t.join()
    rx.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(got) >= 10, (rx.last_error, r.stderr[-2000:])
    recorded = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames_of(tmp_path / "out.mp4")]
    cv2.imwrite(str(tmp_path / "received.png"), cv2.cvtColor(got[-1], cv2.COLOR_RGB2BGR))
    assert got[-1].shape == recorded[-1].shape == (SIZE, SIZE, 3)
    assert rx.sender.endswith(f"({name})")  # the sender is named after the show
    # what NDI carried against what the show presented (each through its own codec: SpeedHQ, mp4v)
    assert diff(got[-1], recorded[-1]) < 6.0
    assert diff(got[-1], pattern(1)) < 8.0  # and it is the clip's picture, not just any picture
    assert diff(got[-1], pattern(2)) > 30.0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["counters"]["output_ndi_sent"] >= 10
    assert "output_readbacks" not in stats["counters"]  # the recorder's read served the output as well


def test_an_output_switched_off_sends_nothing_and_needs_no_readback(tmp_path: Path) -> None:
    name = f"ndi-off-{os.getpid()}"
    path = show_file(tmp_path, name, '[source]\nkind = "synthetic"\nwidth = 160\nheight = 96',
                     '[[output]]\nkind = "ndi"\nname = "wall"\non = false')
    r = run("rehearse", str(path), "--headless", "--seconds", "2", "--stats", str(tmp_path / "off.json"))
    assert r.returncode == 0, r.stderr
    off = json.loads((tmp_path / "off.json").read_text())["counters"]
    assert "output_wall_sent" not in off and "output_readbacks" not in off
    r = run("rehearse", str(path), "--headless", "--seconds", "2", "--stats", str(tmp_path / "on.json"),
            "--set", "output/wall/on=1")
    assert r.returncode == 0, r.stderr
    on = json.loads((tmp_path / "on.json").read_text())
    # no recorder: the output made the frame's one readback itself, once per presented frame at most
    assert 0 < on["counters"]["output_readbacks"] <= on["frames_presented"]
    assert on["counters"]["output_wall_sent"] >= on["counters"]["output_readbacks"] - 2


def test_an_ndi_sender_feeds_the_show_as_its_source(tmp_path: Path) -> None:
    from installation.media.ndi import NdiSender

    name = f"pattern-{os.getpid()}"
    sender = NdiSender(name, 30.0)
    sender.open()
    stop = threading.Event()
    picture = pattern(3)

    def send() -> None:
        while not stop.is_set():
            sender.send(picture, time.monotonic())
            time.sleep(1 / 30)

    t = threading.Thread(target=send)
    t.start()
    try:
        path = show_file(tmp_path, "ndi-in", f'[source]\nkind = "ndi"\nname = "{name}"\n'
                         f'width = {SIZE}\nheight = {SIZE}')
        r = run("rehearse", str(path), "--headless", "--seconds", "5", "--record", str(tmp_path / "in.mp4"),
                "--stats", str(tmp_path / "in.json"))
        checked = run("check", str(path))
    finally:
        stop.set()
        t.join()
        sender.close()
    assert r.returncode == 0, r.stdout + r.stderr
    stats = json.loads((tmp_path / "in.json").read_text())
    assert stats["source"] == f"ndi {name}" and stats["source_frames_read"] >= 30
    last = cv2.cvtColor(frames_of(tmp_path / "in.mp4")[-1], cv2.COLOR_BGR2RGB)
    cv2.imwrite(str(tmp_path / "shown.png"), cv2.cvtColor(last, cv2.COLOR_RGB2BGR))
    assert diff(last, picture) < 8.0
    assert checked.returncode == 0, checked.stderr
    assert name in next(ln for ln in checked.stdout.splitlines() if ln.startswith("ndi sources:"))


def test_a_sender_that_goes_away_and_comes_back_is_reconnected(tmp_path: Path) -> None:
    from installation.media.ndi import NdiSender, ndi_source

    name = f"flaky-{os.getpid()}"
    rx = ndi_source(name).start()

    def serve(pic: np.ndarray, seconds: float) -> None:
        tx = NdiSender(name)
        tx.open()
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            tx.send(pic, time.monotonic())
            time.sleep(1 / 30)
        tx.close()

    try:
        serve(pattern(4), 1.5)
        first = rx.recv(timeout=1.0)
        time.sleep(4.0)  # silence: the source gives up on the sender after ndi.STALL_S
        threading.Thread(target=serve, args=(pattern(5), 6.0), daemon=True).start()
        latest = None
        t_end = time.monotonic() + 8
        while time.monotonic() < t_end:
            f = rx.recv(timeout=0.5)
            if f is not None:
                latest = f
                if diff(f.image, pattern(5)) < 8.0:
                    break
    finally:
        rx.close()
    assert first is not None and diff(first.image, pattern(4)) < 8.0
    assert latest is not None and diff(latest.image, pattern(5)) < 8.0, rx.last_error
    assert rx.errors >= 1 and ("no picture" in rx.last_error or "no NDI source" in rx.last_error)


def test_an_unknown_ndi_name_fails_check_and_never_stops_a_run(tmp_path: Path) -> None:
    path = show_file(tmp_path, "nobody", '[source]\nkind = "ndi"\nname = "nobody-sends-this"')
    r = run("check", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(path) in r.stderr and "source.name" in r.stderr and "nobody-sends-this" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("rehearse", str(path), "--headless", "--seconds", "3", "--stats", str(tmp_path / "s.json"))
    assert r.returncode == 1 and "never delivered a frame" in r.stderr, r.stderr  # played to the end, then said so
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["faults"].get("source", 0) >= 1 and stats["frames_presented"] == 0
    assert "no NDI source matching 'nobody-sends-this'" in stats["last_fault"]
    empty = show_file(tmp_path, "noname", '[source]\nkind = "ndi"')
    r = run("check", str(empty))
    assert r.returncode == 2 and "source.name" in r.stderr and "an NDI source needs a name" in r.stderr
