"""Starting at boot and coming back after a crash.

`installation supervise SHOW` runs the show as a child process and starts it again whenever it exits,
is killed, or hangs (its heartbeat file goes stale), backing off when it keeps failing. Each time it
notes how long the new child took to present its first picture. `installation install-service SHOW`
writes a systemd user unit that runs the supervisor with the desktop session (Restart=always covers
the supervisor itself), and prints the systemctl commands that enable it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.state import state_dir
from installation.show.health import HEARTBEAT_ENV, start_file_log, write_json_atomic

log = logging.getLogger("installation.supervise")

# The unit, also in scripts/installation.service for those who install by hand (a test keeps them equal).
UNIT_TEMPLATE = """\
# The installation show "@NAME@": starts with the desktop session, and comes back whenever it stops.
# Written by `installation install-service`. After editing: systemctl --user daemon-reload
[Unit]
Description=installation show @NAME@
After=graphical-session.target
PartOf=graphical-session.target
# Never give up: a show that crashed ten times in a minute must still be tried again.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart=@EXEC@ supervise @SHOW@
WorkingDirectory=@WORKDIR@
Environment=DISPLAY=@DISPLAY@
Environment=PYTHONUNBUFFERED=1
Restart=always
RestartSec=5
# Room for the web server's connections (it refuses past its own limits, which follow this one).
LimitNOFILE=16384
# The supervisor stops the show with SIGTERM; this long, then SIGKILL.
TimeoutStopSec=20

[Install]
WantedBy=graphical-session.target
"""


def _arg(s: str) -> str:
    """One ExecStart/WorkingDirectory word, escaped for systemd (%, $, quotes, spaces)."""
    s = s.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", s):
        s = '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def installation_exec() -> list[str]:
    """How to start `installation` from this environment: its script, else this Python with -m."""
    script = Path(sys.executable).parent / "installation"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "installation.cli"]


def unit_text(name: str, show: Path, exec_cmd: Sequence[str] | None = None, display: str = ":0",
              workdir: Path | None = None) -> str:
    exec_cmd = list(exec_cmd or installation_exec())
    values = {"@NAME@": name, "@EXEC@": " ".join(_arg(a) for a in exec_cmd), "@SHOW@": _arg(str(show)),
              "@WORKDIR@": _arg(str(workdir or show.parent)), "@DISPLAY@": display}
    text = UNIT_TEMPLATE
    for k, v in values.items():
        text = text.replace(k, v)
    return text


def unit_name(show_name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", show_name).strip("-") or "show"
    return f"installation-{slug}.service"


def cmd_install_service(args: argparse.Namespace) -> int:
    from installation.app import load_show

    cfg = load_show(args.show)  # a broken show is reported now, not at the next boot
    assert cfg.path is not None
    dest = Path(args.dest) if args.dest else Path.home() / ".config" / "systemd" / "user"
    dest.mkdir(parents=True, exist_ok=True)
    unit = dest / unit_name(cfg.name)
    unit.write_text(unit_text(cfg.name, cfg.path, display=args.display))
    print(f"wrote {unit}")
    print("enable it (starts with the desktop session from now on):")
    if args.dest:
        print(f"  ln -sf {unit} ~/.config/systemd/user/{unit.name}")
    print("  systemctl --user daemon-reload")
    print(f"  systemctl --user enable --now {unit.name}")
    print("see it:")
    print(f"  systemctl --user status {unit.name}")
    print(f"  journalctl --user -u {unit.name} -f")
    print("stop it for maintenance:")
    print(f"  systemctl --user stop {unit.name}")
    return 0


# ---- the supervisor -----------------------------------------------------------------------------

def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies, so no orphan show keeps the camera."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def read_heartbeat(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Supervisor:
    """Runs `installation run SHOW ...` and starts it again whenever it stops or hangs."""

    def __init__(self, show: str, run_args: Sequence[str], heartbeat: Path, status: Path | None = None,
                 hang_s: float = 60.0, start_grace_s: float = 180.0, backoff_s: float = 1.0,
                 backoff_max_s: float = 60.0, stable_s: float = 60.0, max_restarts: int | None = None) -> None:
        self.cmd = [*installation_exec(), "run", show, *run_args]
        self.heartbeat = heartbeat
        self.status_path = status
        self.hang_s = hang_s
        self.start_grace_s = start_grace_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self.max_restarts = max_restarts
        self.stop_event = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.restarts = 0
        self.first_frame_s: list[float] = []  # per start: seconds from spawn to the first picture
        self.delays: list[float] = []  # the back-off before each restart
        self.exits: list[dict[str, Any]] = []

    def stop(self, *_: Any) -> None:
        self.stop_event.set()

    def _write_status(self, **extra: Any) -> None:
        if self.status_path is None:
            return
        data = {"pid": os.getpid(), "child_pid": self.child.pid if self.child else None, "starts": self.starts,
                "restarts": self.restarts, "first_frame_s": self.first_frame_s[-20:], "exits": self.exits[-20:],
                "delays_s": self.delays[-20:],
                "t": time.time(), **extra}
        try:
            write_json_atomic(self.status_path, data)
        except OSError as e:
            log.warning("can't write %s: %s", self.status_path, e)

    def _terminate(self, child: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
        if child.poll() is not None:
            return
        child.terminate()
        try:
            child.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.error("show pid %d ignored SIGTERM for %.0f s; killing it", child.pid, grace_s)
            child.kill()
            child.wait()

    def run_once(self) -> tuple[int, float]:
        """Start the show, watch it until it exits (or hangs, then end it); (exit code, seconds it ran)."""
        env = dict(os.environ, **{HEARTBEAT_ENV: str(self.heartbeat)})
        t0 = time.monotonic()
        child = subprocess.Popen(self.cmd, env=env, preexec_fn=_die_with_parent)
        self.child = child
        self.starts += 1
        log.info("show started, pid %d: %s", child.pid, " ".join(self.cmd))
        self._write_status(state="starting")
        up = False
        beat, t_beat = None, t0  # the last heartbeat seen, and when (monotonic: immune to clock changes)
        while child.poll() is None:
            if self.stop_event.wait(0.2):
                self._terminate(child)
                break
            hb = read_heartbeat(self.heartbeat)
            now = time.monotonic()
            if hb is not None and hb.get("pid") == child.pid and hb.get("t") != beat:
                beat, t_beat = hb.get("t"), now
                if not up:
                    up = True
                    took = now - t0
                    self.first_frame_s.append(round(took, 3))
                    log.info("show pid %d presenting, %.1f s after start", child.pid, took)
                    self._write_status(state="up")
            if up and now - t_beat > self.hang_s:
                log.error("show pid %d: no heartbeat for %.0f s (hung); restarting it", child.pid, self.hang_s)
                self._terminate(child, 5.0)
            elif not up and now - t0 > self.start_grace_s:
                log.error("show pid %d presented nothing in %.0f s; restarting it", child.pid, self.start_grace_s)
                self._terminate(child, 5.0)
        rc = child.wait()
        return rc, time.monotonic() - t0

    def run(self) -> int:
        delay = self.backoff_s
        while not self.stop_event.is_set():
            rc, ran = self.run_once()
            self.exits.append({"rc": rc, "ran_s": round(ran, 1), "t": time.time()})
            if self.stop_event.is_set():
                break
            if ran >= self.stable_s:
                delay = self.backoff_s  # it ran well for a while: this is a new failure, not a loop
            how = f"killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
            if self.max_restarts is not None and self.restarts >= self.max_restarts:
                log.error("show %s after %.1f s; gave up after %d restarts", how, ran, self.restarts)
                self._write_status(state="gave up")
                return 1
            log.warning("show %s after %.1f s; starting it again in %.1f s", how, ran, delay)
            self.delays.append(delay)
            self._write_status(state="restarting", delay_s=delay)
            if self.stop_event.wait(delay):
                break
            delay = min(delay * 2, self.backoff_max_s)
            self.restarts += 1
        self._write_status(state="stopped")
        log.info("supervisor stopped")
        return 0


def cmd_supervise(args: argparse.Namespace) -> int:
    from installation.app import load_show
    from installation.show.config import find_show

    try:
        name = load_show(args.show).name
    except UserError as e:  # the child will report it and be retried: someone may fix the file
        log.error("%s", e.render())
        name = find_show(args.show).stem
    folder = Path(args.state) if args.state else state_dir(name)
    if folder is None:
        raise UserError("no state folder for the heartbeat", key="--state", expected="a folder")
    folder.mkdir(parents=True, exist_ok=True)
    run_args = list(args.run_args)
    start_file_log(folder / "logs", "supervise.log")
    if args.state:  # the show keeps its state (and beats) in the same folder
        run_args = ["--state", str(folder), *run_args]
    sup = Supervisor(str(args.show or "default"), run_args, args.heartbeat or folder / "heartbeat.json",
                     folder / "supervise.json", hang_s=args.hang_s, start_grace_s=args.start_grace_s,
                     backoff_s=args.backoff_s, backoff_max_s=args.backoff_max_s, max_restarts=args.max_restarts)
    signal.signal(signal.SIGTERM, sup.stop)
    signal.signal(signal.SIGINT, sup.stop)
    print(f"supervising {name}: heartbeat {sup.heartbeat}, status {sup.status_path}")
    return sup.run()


def add_commands(sub: Any) -> None:
    p = sub.add_parser("supervise", help="run a show and restart it whenever it dies or hangs",
                       usage="installation supervise [options] [SHOW] [-- run flags]")
    p.add_argument("show", nargs="?", default=None)
    # after `--`: the show's own flags, passed to `installation run` (cli.main splits them off)
    p.set_defaults(run_args=[])
    p.add_argument("--state", type=Path, help="folder for the heartbeat, status and log (default: the show's)")
    p.add_argument("--heartbeat", type=Path, help="the heartbeat file the show writes (default: in --state)")
    p.add_argument("--hang-s", type=float, default=60.0, help="restart when the heartbeat is this old (60)")
    p.add_argument("--start-grace-s", type=float, default=180.0,
                   help="restart when no first picture came this long after start (180)")
    p.add_argument("--backoff-s", type=float, default=1.0, help="first restart delay; doubles (1)")
    p.add_argument("--backoff-max-s", type=float, default=60.0, help="longest restart delay (60)")
    p.add_argument("--max-restarts", type=int, default=None, help="give up after N restarts (default: never)")
    p.set_defaults(func=cmd_supervise)
    p = sub.add_parser("install-service", help="write a systemd user unit that runs a show at login")
    p.add_argument("show", nargs="?", default=None)
    p.add_argument("--dest", type=Path, help="folder to write the unit to (default ~/.config/systemd/user)")
    p.add_argument("--display", default=os.environ.get("DISPLAY") or ":0", help="X display (default $DISPLAY or :0)")
    p.set_defaults(func=cmd_install_service)
