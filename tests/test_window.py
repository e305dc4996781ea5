"""A real pyglet window on a real X server (Xvfb): fullscreen, the cursor, keys sent by xdotool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import frames_of, xdotool, xvfb

pytestmark = pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("xdotool"),
                                reason="needs Debian's xvfb and xdotool (scripts/setup.sh installs them)")

CHILD = textwrap.dedent("""
    import json, sys, threading, time
    from installation.app import load_show
    from installation.app import RunOptions, Show

    show = Show(load_show(sys.argv[1]), RunOptions(headless=False, seconds=60, realtime=True))
    show.build()
    print(json.dumps({"size": list(show.display.size), "fullscreen": show.display.window.fullscreen}), flush=True)
    seen = {"hud": False, "blackout": False}
    def watch():
        # report what the keys did, as the main loop sees it, once per change
        last = None
        while not show.stopped:
            now = (show.store.get("hud/show"), show.store.get("show/blackout"))
            if now != last:
                print(json.dumps({"hud": now[0], "blackout": now[1]}), flush=True)
                last = now
            time.sleep(0.05)
    threading.Thread(target=watch, daemon=True).start()
    summary = show.run()
    print(json.dumps({"done": True, "frames": summary["frames_presented"]}), flush=True)
""")


@pytest.fixture
def xserver() -> Iterator[str]:
    with xvfb("800x600") as display:
        yield display


def test_fullscreen_window_and_keys(tmp_path: Path, xserver: str):
    show = tmp_path / "w.toml"
    show.write_text('name = "w"\n[source]\nkind = "synthetic"\nwidth = 160\nheight = 90\n'
                    '[render]\nfullscreen = true\ncontent_size = 64\n[osc]\nenabled = false\n')
    env = {**os.environ, "DISPLAY": xserver}
    env.pop("WAYLAND_DISPLAY", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(show)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(child.stdout.readline())
        assert first["fullscreen"] is True
        assert first["size"] == [800, 600], "fullscreen fills the screen"
        states = [json.loads(child.stdout.readline())]
        assert states[-1] == {"hud": False, "blackout": False}

        def key_until(key: str, want: dict) -> None:
            xdotool(xserver, "search", "--name", "installation", "windowfocus", "--sync")
            xdotool(xserver, "key", key)
            deadline = time.monotonic() + 10
            while states[-1] != want:
                assert time.monotonic() < deadline, f"{key} did not give {want}: {states}"
                states.append(json.loads(child.stdout.readline()))

        key_until("h", {"hud": True, "blackout": False})
        key_until("b", {"hud": True, "blackout": True})
        xdotool(xserver, "key", "Escape")
        xdotool(xserver, "key", "q")
        time.sleep(1.0)
        assert child.poll() is None, "Escape or a bare Q must not end the show"
        xdotool(xserver, "key", "ctrl+q")
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["done"] and last["frames"] > 0


def test_a_resized_window_s_pictures_are_reported_as_rejected_by_the_recording(tmp_path: Path, xserver: str):
    """The recording keeps the size the window had when it started; after a resize the pictures are of
    another size: the command says how many it could not record instead of counting them as written."""
    show = tmp_path / "r.toml"
    show.write_text('name = "r"\n[source]\nkind = "synthetic"\nwidth = 160\nheight = 90\n'
                    '[render]\nfullscreen = false\nwidth = 320\nheight = 180\ncontent_size = 64\n'
                    '[osc]\nenabled = false\n')
    out, stats = tmp_path / "r.mp4", tmp_path / "r.json"
    env = {**os.environ, "DISPLAY": xserver, "INSTALLATION_STATE_DIR": str(tmp_path / "state")}
    env.pop("WAYLAND_DISPLAY", None)
    child = subprocess.Popen([str(Path(sys.executable).parent / "installation"), "rehearse", str(show), "--window",
                              "--seconds", "6", "--record", str(out), "--stats", str(stats)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        # the caption exactly: pyglet's hidden shadow window is named after the program's path
        while subprocess.run(["xdotool", "search", "--name", "^installation$"], env=env,
                             capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and child.poll() is None, "no window"
            time.sleep(0.2)
        time.sleep(1.0)
        xdotool(xserver, "search", "--name", "^installation$", "windowsize", "400", "300")
        text, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    s = json.loads(stats.read_text())
    assert s["recorded_rejected"] > 0, s
    assert f"{s['recorded_rejected']} pictures rejected" in text, text
    frames = frames_of(out)
    assert frames and all(f.shape == (180, 320, 3) for f in frames)
    assert len(frames) == s["recorded_frames"]
