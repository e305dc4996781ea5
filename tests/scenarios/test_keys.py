"""Kiosk keys, judged from what was shown: the real `installation run` in a real window on a real X server
(Xvfb), keys typed by xdotool, and the X server's own picture of its screen (Pillow's ImageGrab over XCB)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import xdotool, xvfb
from tests.scenarios.conftest import INSTALLATION, cli_env, frames_of

pytestmark = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("xdotool"),
                                reason="needs Debian's xvfb and xdotool (scripts/setup.sh installs them)")

SETTLE_S = 1.0  # after a key, before the screen is read: several frames at 30 fps, on a busy machine


@pytest.fixture
def xserver() -> Iterator[str]:
    with xvfb("640x360") as display:
        yield display


def _screen(display: str) -> np.ndarray:
    """What the X server shows now (the whole screen; the show is fullscreen or the only window)."""
    from PIL import ImageGrab

    return np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))


def _shown_after(tmp_path: Path, display: str, keys: list[str], *flags: str,
                 modifier: str = "ctrl+alt") -> tuple[list[np.ndarray], subprocess.CompletedProcess[str]]:
    """`installation run` on `display`; the screen before the keys and after each one; then Ctrl+Q."""
    show = tmp_path / "kiosk.toml"
    show.write_text('name = "kiosk"\n[source]\nkind = "synthetic"\nwidth = 160\nheight = 90\nfps = 30\n'
                    '[render]\nfullscreen = true\nwidth = 320\nheight = 180\ncontent_size = 64\n'
                    f'[osc]\nenabled = false\n[keys]\nmodifier = "{modifier}"\n')
    env = {**cli_env(tmp_path), "DISPLAY": display}
    proc = subprocess.Popen([INSTALLATION, "run", str(show), *flags, "--seconds", "60",
                             "--record", str(tmp_path / "shown.mp4")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    shots = []
    try:
        assert proc.stdout is not None
        assert "playing" in proc.stdout.readline()
        xdotool(display, "search", "--sync", "--onlyvisible", "--name", "installation", "windowfocus", "--sync")
        time.sleep(SETTLE_S)
        shots.append(_screen(display))
        for k in keys:
            xdotool(display, "key", k)
            time.sleep(SETTLE_S)
            shots.append(_screen(display))
        xdotool(display, "key", "ctrl+q")  # quitting needs Ctrl, kiosk or not
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return shots, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _black(shot: np.ndarray) -> bool:
    return bool(shot.max() < 12)


def test_plain_b_does_nothing_in_a_fullscreen_run_and_the_modifier_b_blacks_out(tmp_path: Path,
                                                                              xserver: str) -> None:
    (before, plain, modified), r = _shown_after(tmp_path, xserver, ["b", "ctrl+alt+b"])
    assert r.returncode == 0, f"Ctrl+Q ends a kiosk run: {r.stderr[-2000:]}"
    assert before.shape[:2] == (360, 640) and before.max() > 60, "the show fills the screen, visibly"
    assert not _black(plain) and np.abs(plain.astype(int) - before).mean() < 40, "a plain B does nothing"
    assert _black(modified), "Ctrl+Alt+B blacks out: every pixel of the screen"

    # the window's recording is what the screen showed (it was black with a stray row before the window
    # presented to, and read back, its own framebuffer)
    recorded = frames_of(tmp_path / "shown.mp4")
    assert recorded[0].shape == before.shape
    seen = min(np.abs(f[..., ::-1].astype(int) - before).mean() for f in recorded[: len(recorded) // 2])
    assert seen < 12, f"no recorded picture looks like the screen before the keys (mean difference {seen:.0f})"
    assert _black(recorded[-1]), "and the recording ends black, as the screen did"


def test_a_window_and_modifier_none_keep_plain_keys(tmp_path: Path, xserver: str) -> None:
    (before, after), r = _shown_after(tmp_path, xserver, ["b"], modifier="none")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not _black(before) and _black(after), 'modifier = "none": a plain B blacks out a fullscreen run'

    (before, after), r = _shown_after(tmp_path, xserver, ["b"], "--window")
    assert r.returncode == 0, r.stderr[-2000:]
    assert not _black(before) and _black(after), "--window: a plain B blacks out"
