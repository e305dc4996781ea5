"""The OSC input server: one receiver thread (BlockingOSCUDPServer), retrying a busy port with
back-off, counting what it drops per address and reason; the pending table's entries."""

from __future__ import annotations

import logging
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

from installation.core.params import Param

if TYPE_CHECKING:
    from installation.control.osc.control import OscControl

log = logging.getLogger("installation.osc")


class InputCounters:
    """What came in and what was dropped, per reason and per address. Written by the receiver thread (and
    by replay on the main thread), read by the HUD: under a lock."""

    MAX_ADDRESSES = 256  # random addresses in a flood must not grow memory without bound
    LOGS_PER_S = 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.datagrams = 0
        self.messages = 0
        self.accepted = 0
        self.coalesced = 0
        self.reasons: Counter[str] = Counter()
        self.by_address: Counter[str] = Counter()
        self.last_reject = ""
        self._logged_at: dict[str, float] = {}
        self._log_window = (0.0, 0)  # (second, lines logged in it)
        self._unlogged = 0

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def add(self, name: str, n: int = 1) -> None:
        """Count one of datagrams, messages, accepted, coalesced."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def refused(self, reason: str, address: str) -> None:
        """Count a refusal that is logged elsewhere (once per sender, access.Gate)."""
        with self._lock:
            self.reasons[reason] += 1
            key = address if address in self.by_address or len(self.by_address) < self.MAX_ADDRESSES else "(other)"
            self.by_address[key] += 1
            self.last_reject = f"{address[:40]} {reason}"

    def reject(self, reason: str, address: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.reasons[reason] += 1
            key = address if address in self.by_address or len(self.by_address) < self.MAX_ADDRESSES else "(other)"
            self.by_address[key] += 1
            self.last_reject = f"{address[:40]} {reason}"
            due = now - self._logged_at.get(key, -1e9) >= 1.0
            second, n = self._log_window
            if int(now) != second:
                second, n = int(now), 0
            if due and n < self.LOGS_PER_S:
                self._logged_at[key] = now
                if len(self._logged_at) > 4 * self.MAX_ADDRESSES:
                    self._logged_at.clear()
                self._log_window = (second, n + 1)
                unlogged, self._unlogged = self._unlogged, 0
            else:
                self._log_window = (second, n)
                self._unlogged += 1
                return
        more = f" (+{unlogged} similar not logged)" if unlogged else ""
        log.warning("OSC %s dropped: %s: %s%s", address[:80], reason, detail[:160], more)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"datagrams": self.datagrams, "messages": self.messages, "accepted": self.accepted,
                    "coalesced": self.coalesced, "rejected": sum(self.reasons.values()),
                    "reasons": dict(self.reasons), "by_address": dict(self.by_address.most_common(20)),
                    "last_reject": self.last_reject}


class RetryingServer:
    """A socketserver server on its own thread; while its port is taken it says so and retries every
    `retry_s`, because exiting would loop a black screen under a restarting service.

    The first bind happens in the constructor, so the port (or the error) is known at once."""

    def __init__(self, what: str, port: int, make: Callable[[], socketserver.BaseServer], retry_s: float,
                 poll_s: float = 0.1) -> None:
        self.what = what
        self.port = port
        self.make = make
        self.retry_s = retry_s
        self.poll_s = poll_s
        self.server: socketserver.BaseServer | None = None
        self.error = ""
        self.attempts = 0
        self._stop = threading.Event()
        self._bind()
        self._thread = threading.Thread(target=self._run, name=f"{what}-server".replace(" ", "-"), daemon=True)
        self._thread.start()

    def _bind(self) -> bool:
        self.attempts += 1
        try:
            server = self.make()
        except OSError as e:
            first = not self.error
            if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                self.error = (f"{self.what} port {self.port} is taken by another program "
                              f"(another show running?); retrying every {self.retry_s:g} s")
            else:
                self.error = f"{self.what} port {self.port}: {e.strerror or e}; retrying every {self.retry_s:g} s"
            if first:
                log.error("%s", self.error)
            return False
        self.server = server
        self.port = server.server_address[1]
        if self.error:
            log.info("%s listening on port %d at last (after %d attempts)", self.what, self.port, self.attempts)
        self.error = ""
        return True

    def _run(self) -> None:
        while self.server is None:
            if self._stop.wait(self.retry_s):
                return
            self._bind()
        srv = self.server
        srv.timeout = self.poll_s
        while not self._stop.is_set():
            try:
                srv.handle_request()
            except Exception as e:  # a server thread that dies leaves the show deaf: never
                log.error("%s: %s: %s", self.what, type(e).__name__, e)

    @property
    def listening(self) -> bool:
        return self.server is not None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self.server is not None:
            self.server.server_close()


class _OscUDPServer(BlockingOSCUDPServer):
    """python-osc's blocking server, with every datagram judged by the control (allow-list, malformed
    ones counted) instead of silently dropped."""

    max_packet_size = 65536  # a datagram is at most this; the default 8 KiB would cut big bundles

    def __init__(self, address: tuple[str, int], control: OscControl) -> None:
        self.control = control
        super().__init__(address, Dispatcher())  # never consulted: finish_request hands datagrams to the control

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.control.gate.allowed(client_address[0]):
            return True
        self.control.counters.add("datagrams")
        self.control.counters.refused("not allowed", f"(from {client_address[0]})")
        return False

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.control.receive(request[0], client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.control.counters.reject("malformed", "(error)", "the handler failed")


@dataclass
class _Pending:
    param: Param
    value: Any
    args: list[Any]
    sender: tuple[str, int] | None
    altered: bool
