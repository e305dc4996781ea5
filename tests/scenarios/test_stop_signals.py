"""SIGTERM and SIGINT end the real show within 2 s whatever a thread is doing (core/stopping.py): a thread
that holds the interpreter in a regular expression, a thread that waits in C and never joins, and the
ordinary case, where the show closes cleanly and writes what it writes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installation.core.stopping import STOP_WITHIN_S
from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import cli_env

# A show process with one extra thread: once the file argv[1] exists it gets stuck in C code, either holding
# the GIL (a regular expression that backtracks for hours) or not (a ctypes sleep on a non-daemon thread,
# which the interpreter would wait for at exit).
PROGRAM = """
import ctypes, re, sys, threading, time
from pathlib import Path
from installation.cli import main
go, kind = Path(sys.argv[1]), sys.argv[2]
def stuck():
    while not go.exists():
        time.sleep(0.02)
    if kind == "regex":
        re.match(r"(a*)*b", "a" * 64)
    elif kind == "sleep":
        ctypes.CDLL(None).sleep(600)
threading.Thread(target=stuck, daemon=kind != "sleep").start()
sys.exit(main(sys.argv[3:]))
"""


def _start(tmp_path: Path, kind: str, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    show = small_show(tmp_path, name="stop", source=SYNTHETIC + "\nfps = 30")
    go = tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, str(go), kind, "rehearse", str(show), "--headless",
                             "--seconds", "120", "--web-port", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(tmp_path),
                            cwd=tmp_path)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "playing" in line, proc.communicate(timeout=30)[1][-3000:]
    return proc, go


def _stop(proc: subprocess.Popen[str], sig: int) -> tuple[float, str]:
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the show was still running {STOP_WITHIN_S} s after {signal.Signals(sig).name}")
    took = time.monotonic() - t0
    return took, proc.communicate()[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_thread_holding_the_interpreter_in_c_cannot_keep_the_show_alive(tmp_path: Path, sig: int) -> None:
    proc, go = _start(tmp_path, "regex")
    beat = tmp_path / "state-root" / "stop" / "heartbeat.json"
    go.touch()
    time.sleep(1.0)  # the regex has the GIL now: the show's own handler can't run
    seen = beat.stat().st_mtime if beat.exists() else None
    time.sleep(1.5)
    assert (beat.stat().st_mtime if beat.exists() else None) == seen, "the stuck thread really stalls the show"
    _, err = _stop(proc, sig)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert "did not stop within" in err and signal.Signals(sig).name in err


def test_a_thread_that_never_joins_cannot_keep_the_process_alive(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    proc, go = _start(tmp_path, "sleep", "--stats", str(stats))
    go.touch()
    time.sleep(0.5)
    _, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 1, err[-2000:]  # faulthandler's timer: the show closed, the interpreter hung at exit
    assert "stuck" in err, "the stack of the thread that held the exit up is in the log"
    assert json.loads(stats.read_text())["frames_presented"] > 0, "the graceful stop wrote the stats first"


def test_an_ordinary_sigterm_closes_the_show_cleanly(tmp_path: Path) -> None:
    stats, out = tmp_path / "stats.json", tmp_path / "out.mp4"
    proc, _ = _start(tmp_path, "none", "--stats", str(stats), "--record", str(out))
    time.sleep(1.0)
    _, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(stats.read_text())["frames_presented"] > 0
    import cv2

    cap = cv2.VideoCapture(str(out))
    ok, _ = cap.read()
    cap.release()
    assert ok, "the recording is whole and readable"
