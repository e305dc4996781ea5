"""A hostile venue network against the real show, over OSC: each attack of issue 23's OSC side sent from
loopback to `installation rehearse --headless` (a free OSC port, the web panel on a free port), judged from
outside: frames keep being presented (the status page's frame count goes on rising), /api/status answers,
nothing is written to the show's state folder but bounded log lines, and the attack is counted there.
Bounded: a few hundred datagrams, one show of a few seconds per test."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import struct
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from installation.control.osc.wire import build_dgram
from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import flat_model, free_tcp_port, free_udp_port, start_cli

# The datagram: 36 bytes that froze the show for over 50 s (python-osc's regex backtracking).
FREEZE = b"/*/**********************q\0\0,f\0\0?\x80\0\0"
QUIET = {"heartbeat.json", "governor.json"}  # rewritten while the show plays, whatever comes in


def _raw(address: str, tag: str, payload: bytes = b"") -> bytes:
    """An OSC message built by hand (python-osc's builder won't make some of these)."""
    def pad(b: bytes) -> bytes:
        b += b"\0"
        return b + b"\0" * (-len(b) % 4)
    return pad(address.encode()) + pad(("," + tag).encode()) + payload


class Live:
    """One show playing in a subprocess, and what an outsider can see of it."""

    def __init__(self, tmp_path: Path, name: str, osc_extra: str = "", tail: str = "",
                 model: Path | None = None) -> None:
        self.tmp_path = tmp_path
        self.port, self.web = free_udp_port(), free_tcp_port()
        show = small_show(tmp_path, name=name, model=model, source=SYNTHETIC + "\nfps = 30",
                          osc=f'host = "127.0.0.1"\noscquery_port = 0\n{osc_extra}', tail=tail)
        self.stats = tmp_path / "stats.json"
        self.proc = start_cli(["rehearse", show, "--headless", "--seconds", 60, "--osc-port", self.port,
                               "--web-port", self.web, "--stats", self.stats], tmp_path)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "playing" in line, self.proc.communicate(timeout=30)[1][-3000:]
        self.state = tmp_path / "state-root" / name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.wait(lambda s: s.get("frames_presented", 0) > 10, 20)

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web}/api/status", timeout=2) as r:
            return json.loads(r.read())

    def wait(self, cond: Any, timeout: float = 10) -> dict[str, Any]:
        t_end = time.monotonic() + timeout
        while True:
            s = self.status()
            if cond(s):
                return s
            assert time.monotonic() < t_end, f"not within {timeout} s: {json.dumps(s)[:1500]}"
            time.sleep(0.2)

    def send(self, dgram: bytes) -> None:
        self.sock.sendto(dgram, ("127.0.0.1", self.port))

    def files(self) -> dict[str, str]:
        """The state folder's files (their content's hash) but those the show rewrites anyway and its logs."""
        out = {}
        for f in sorted(self.state.rglob("*")):
            if f.is_file() and f.name not in QUIET and "logs" not in f.relative_to(self.state).parts:
                out[str(f.relative_to(self.state))] = hashlib.sha256(f.read_bytes()).hexdigest()
        return out

    def log_text(self) -> str:
        return "\n".join(f.read_text(errors="replace") for f in sorted((self.state / "logs").glob("*.log*")))

    def still_presenting(self, frames_before: int) -> dict[str, Any]:
        """Frames go on and /api/status answers: 15 more frames within 5 s, at 30 fps asked."""
        return self.wait(lambda s: s["frames_presented"] >= frames_before + 15, 5)

    def stop(self) -> tuple[dict[str, Any], str]:
        self.sock.close()
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=10)
        assert self.proc.returncode == 0, err[-3000:]
        return json.loads(self.stats.read_text()), err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def live(tmp_path: Path):  # type: ignore[no-untyped-def]
    shows: list[Live] = []

    def start(*args: Any, **kwargs: Any) -> Live:
        shows.append(Live(tmp_path, *args, **kwargs))
        return shows[-1]

    yield start
    for s in shows:
        s.kill()


def test_patterns_that_froze_the_show_are_matched_or_refused_without_a_stall(live: Any) -> None:
    show = live("patterns")
    files = show.files()
    before = show.status()
    hostile = [FREEZE,
               _raw("/*/" + "*?" * 100 + "q", "f", struct.pack(">f", 1.0)),
               _raw("/" + "[a-z]*" * 40 + "q", "f", struct.pack(">f", 1.0)),
               _raw("/{a,b,c,d}/{a,b,c,d}/{a,b,c,d,e}", "f", struct.pack(">f", 1.0)),  # 80 alternatives
               _raw("/*/" + "*" * 300, "f", struct.pack(">f", 1.0)),  # longer than a pattern may be
               _raw("/pre/[bl", "f", struct.pack(">f", 1.0))]  # unclosed
    t0 = time.monotonic()
    for _ in range(20):
        for d in hostile:
            show.send(d)
    during = show.status()  # answered while the datagrams are being judged
    assert time.monotonic() - t0 < 5
    after = show.still_presenting(during["frames_presented"])
    reasons = after["osc"]["reasons"]
    assert reasons.get("pattern refused", 0) >= 20 * 3, reasons
    assert reasons.get("unknown address", 0) >= 20 * 3, reasons  # matched nothing: 20 x 3 patterns
    assert show.files() == files, "nothing written"
    show.send(build_dgram("/colour/*", 0.5))  # an ordinary pattern still sets what it matches
    show.wait(lambda s: s["osc"]["accepted"] > before["osc"]["accepted"])
    stats, _ = show.stop()
    assert stats["frames_presented"] > after["frames_presented"]


def test_a_flood_of_long_addresses_is_counted_and_the_log_stays_small(live: Any) -> None:
    show = live("flood")
    files = show.files()
    log_before = len(show.log_text())
    long = _raw("/" + "x" * 60_000, "f", struct.pack(">f", 1.0))
    before = show.status()
    for i in range(600):  # the 597 datagrams in 10 s rotated away all four log files
        show.send(long if i % 100 == 0 else build_dgram(f"/attack/{i}", 1.0))
        if i % 50 == 49:
            time.sleep(0.05)  # a fast flood, not a burst the socket buffer would drop
    after = show.still_presenting(before["frames_presented"])
    show.wait(lambda s: s["osc"]["reasons"].get("unknown address", 0) >= 550, 5)
    show.stop()
    text = show.log_text()
    assert max(len(line) for line in text.splitlines()) < 1000, "a 60,000-character address is cut"
    assert "x" * 1000 not in text
    assert len(text) - log_before < 40_000, f"{len(text) - log_before} bytes of log for 600 datagrams"
    assert "not logged" in text or "similar not logged" in text, "what was held back is said"
    assert show.files() == files, "nothing written but bounded log lines"
    assert after["osc"]["rejected"] >= before["osc"]["rejected"] + 550


def test_model_paths_and_wrong_types_are_refused_counted_and_reveal_no_path(live: Any, tmp_path: Path) -> None:
    model = flat_model(tmp_path / "models" / "grey", (128, 128, 128))
    elsewhere = flat_model(tmp_path / "private" / "secret", (255, 0, 0))  # a real model outside the show's folders
    show = live("paths", model=model)
    files = show.files()
    before = show.status()
    for path in ("/etc/shadow", str(elsewhere), "../private/secret", "secret.onnx", "/nonexistent/x",
                 "x" * 65):
        show.send(build_dgram("/model/select", path))
    show.send(_raw("/colour/brightness", "s", b"5\0\0\0"))  # ,s "5" for a float
    show.send(_raw("/colour/brightness", "T"))  # ,T for a float
    show.send(_raw("/hud/show", "s", b"on\0\0"))  # text for a bool
    s = show.wait(lambda s: s["osc"]["reasons"].get("bad value", 0) >= 9, 5)
    show.still_presenting(before["frames_presented"])
    text = json.dumps(s)
    for leak in (str(tmp_path), "/etc", "shadow", "not found", "readable", "private"):
        assert leak not in text, f"/api/status shows {leak!r}"
    show.send(build_dgram("/model/select", "grey"))  # a name among the show's models still works
    stats, err = show.stop()
    assert stats["model"] == "grey" and stats["counters"].get("model_swaps", 0) <= 1
    assert stats["faults"] == {}, stats["faults"]
    assert "never a path" in err, "the refusal is in the local log"
    assert show.files() == files, "nothing written"


def test_with_a_token_udp_is_closed_and_datagrams_change_nothing(live: Any) -> None:
    show = live("token", tail='[web]\ntoken = "sesame-1234"\n')
    before = show.status()
    assert before["osc"]["port"] == 0, "no UDP port open"
    for _ in range(50):
        show.send(build_dgram("/show/blackout", 1))
    after = show.still_presenting(before["frames_presented"])
    assert after["blackout"] is False
    assert after["osc"]["accepted"] == before["osc"]["accepted"]
    _, err = show.stop()
    assert "OSC over UDP off" in err
