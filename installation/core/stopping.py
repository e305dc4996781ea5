"""SIGTERM and SIGINT end the process within STOP_WITHIN_S, whatever any thread is doing.

A Python signal handler runs on the main thread between two bytecodes, so it never runs while another
thread holds the GIL inside C code (a regular expression that backtracks for a minute) or while the main
thread waits in C (a driver call): the show then ignores SIGTERM, and the service and `installation
supervise` have to kill it. So the stop comes in three steps, each one surer and rougher than the last:

1. The handler (when it can run) asks for a graceful stop: the show closes, the recording and the stats
   are written, the process exits with its usual code.
2. The same handler arms faulthandler's C thread: if the process is still there HANDLER_GRACE_S later (a
   teardown that hangs, a thread that won't join), it writes every thread's stack to stderr (the log
   says where it hung) and exits with code 1.
3. Before any of that, a small watchdog process, started with the show, hears of the signal from the C
   level: Python's own C signal handler writes the signal's number to the wakeup fd (signal.set_wakeup_fd)
   even when no Python code can run. If the show has not exited WATCHDOG_GRACE_S after the signal, the
   watchdog kills it (SIGKILL: exit status -9, 137 in a shell). Nothing can be flushed then: a recording
   being written is cut short (the JSON lines written so far stay readable; an mp4 loses its index).

The watchdog is one small Python process (about 10 MB) that reads a pipe; it ignores SIGTERM and SIGINT
itself (a Ctrl-C or a service stop reaches the whole group), and it ends when the show's end of the pipe
closes, which is when the show exits, however it exits.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable

log = logging.getLogger("installation")

STOP_WITHIN_S = 2.0
HANDLER_GRACE_S = 1.4
WATCHDOG_GRACE_S = 1.8
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# The watchdog's whole program (python -I -S: no site, no user paths, a fast start).
_WATCHDOG = """
import os, select, signal, sys, time
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, signal.SIG_IGN)
parent, grace, stops = int(sys.argv[1]), float(sys.argv[2]), {int(x) for x in sys.argv[3].split(",")}
while True:
    got = os.read(0, 256)
    if not got:
        sys.exit(0)
    if stops & set(got):
        break
name = signal.Signals(next(b for b in got if b in stops)).name
deadline = time.monotonic() + grace
while (left := deadline - time.monotonic()) > 0:
    ready, _, _ = select.select([0], [], [], left)
    if ready and not os.read(0, 256):
        sys.exit(0)
os.write(2, f"installation: the show (pid {parent}) did not stop within {grace:g} s of {name}: "
            f"a thread holds the interpreter; killing it\\n".encode())
try:
    os.kill(parent, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


class StopSignals:
    """SIGTERM/SIGINT handling for one process: call on_stop once, and make sure it ends in time.
    Install it on the main thread, before the threads that could hold the interpreter start."""

    def __init__(self, on_stop: Callable[[], None], handler_grace_s: float = HANDLER_GRACE_S,
                 watchdog_grace_s: float = WATCHDOG_GRACE_S) -> None:
        self.on_stop = on_stop
        self.handler_grace_s = handler_grace_s
        self.received: list[str] = []
        self.watchdog: subprocess.Popen[bytes] | None = None
        self._wakeup_w = -1
        read_end, self._wakeup_w = os.pipe()
        try:
            self.watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(os.getpid()), f"{watchdog_grace_s:g}",
                 ",".join(str(int(s)) for s in STOP_SIGNALS)],
                stdin=read_end, close_fds=True)
        except OSError as e:  # no watchdog: the graceful stop and faulthandler's timer still hold
            log.warning("no stop watchdog (%s): a thread stuck in C code could keep SIGTERM waiting", e)
        finally:
            os.close(read_end)
        os.set_blocking(self._wakeup_w, False)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        for s in STOP_SIGNALS:
            signal.signal(s, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        first = not self.received
        self.received.append(name)
        if first:
            faulthandler.dump_traceback_later(self.handler_grace_s, exit=True)
            log.info("%s: stopping (at most %g s)", name, STOP_WITHIN_S)
            self.on_stop()

    def close(self) -> None:
        """The process ends normally: the watchdog goes (its pipe closes) and the signals are Python's again.
        An armed faulthandler timer stays armed: a stop that began must still end in time."""
        for s in STOP_SIGNALS:
            signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        if self._wakeup_w >= 0:
            os.close(self._wakeup_w)
            self._wakeup_w = -1
        if self.watchdog is not None:
            try:
                self.watchdog.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
                self.watchdog.wait()
            self.watchdog = None
