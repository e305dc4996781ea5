"""Feedback targets that come late or move: a controller whose name doesn't resolve at boot (the venue's
network comes up after the show) or whose address changes (DHCP) must still get feedback.

Names are resolved on a thread of their own, never on the render loop (a DNS timeout is seconds): at
once, again every RESOLVE_EVERY_S, and after a failure with a back-off from RETRY_MIN_S doubling to
RETRY_MAX_S. A target whose sends fail is held for the same back-off (so a vanished controller costs no
work per frame) and its name resolved again. Each target counts its failures; its first failure and its
recovery are logged once. A target that becomes reachable (or moves) is handed to `on_new`, so the
control sends it every value at once, as a controller present at start got them.

The resolver is a parameter (default: the system's, getaddrinfo, so mDNS names such as studio-ipad.local
work where the system resolver handles them) because a test cannot change this machine's resolver.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("installation.osc")

RESOLVE_EVERY_S = 60.0
RETRY_MIN_S = 1.0
RETRY_MAX_S = 60.0

Address = tuple[str, int]
Resolver = Callable[[str], str]


def system_resolve(host: str) -> str:
    return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]


def _literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


@dataclass
class Target:
    host: str
    port: int
    addr: Address | None = None
    due: float = 0.0  # when the name is resolved next (monotonic)
    backoff: float = RETRY_MIN_S
    held_until: float = 0.0  # sends skipped until then, after a failed send
    resolve_failures: int = 0
    send_failures: int = 0
    error: str = ""

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


class FeedbackTargets:
    """The show's feedback targets. addresses() and failed() are called on the main thread; the
    resolver thread only writes under the lock."""

    def __init__(self, targets: list[tuple[str, int]], on_new: Callable[[Address], None],
                 resolve: Resolver | None = None) -> None:
        self.resolve = resolve or system_resolve
        self.on_new = on_new
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.targets = [Target(h, p) for h, p in dict.fromkeys(targets)]
        for t in self.targets:
            if _literal(t.host):
                t.addr, t.due = (t.host, t.port), float("inf")
                on_new(t.addr)
        self._thread: threading.Thread | None = None
        if any(t.addr is None for t in self.targets):
            self._thread = threading.Thread(target=self._run, name="osc-resolve", daemon=True)
            self._thread.start()

    def addresses(self) -> list[Address]:
        now = time.monotonic()
        with self._lock:
            return [t.addr for t in self.targets if t.addr is not None and now >= t.held_until]

    def failed(self, addr: Address, error: OSError) -> None:
        """A send to `addr` failed: hold that target for its back-off and look its name up again."""
        now = time.monotonic()
        with self._lock:
            for t in self.targets:
                if t.addr != addr or now < t.held_until:
                    continue
                t.send_failures += 1
                first = not t.error
                t.error = f"send failed ({error.strerror or error})"
                t.held_until = now + t.backoff
                t.backoff = min(t.backoff * 2, RETRY_MAX_S)
                if not _literal(t.host):
                    t.due = now
                if first:
                    log.warning("OSC feedback to %s failed: %s; retrying with back-off", t.name, t.error)
        self._wake.set()

    @property
    def has_errors(self) -> bool:
        return any(t.error for t in self.targets)  # a racy read is fine: it only decides whether to look

    def sent(self, addr: Address) -> None:
        """A send to `addr` went out: a target that had failed works again."""
        with self._lock:
            for t in self.targets:
                if t.addr == addr and t.error and t.send_failures:
                    log.info("OSC feedback to %s works again (after %d failed sends)", t.name, t.send_failures)
                    t.error, t.backoff = "", RETRY_MIN_S

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            with self._lock:
                due = [t for t in self.targets if now >= t.due]
            for t in due:
                self._resolve(t)
            with self._lock:
                wait = min((t.due for t in self.targets), default=RESOLVE_EVERY_S) - time.monotonic()
            self._wake.wait(max(0.05, min(wait, RESOLVE_EVERY_S)))
            self._wake.clear()

    def _resolve(self, t: Target) -> None:
        try:
            ip = self.resolve(t.host)
        except (OSError, UnicodeError) as e:
            now = time.monotonic()
            with self._lock:
                t.resolve_failures += 1
                first = t.resolve_failures == 1
                t.error = "not resolved"
                t.due = now + t.backoff
                t.backoff = min(t.backoff * 2, RETRY_MAX_S)
            if first:
                log.warning("feedback target %s can't be resolved (%s); trying again with back-off (up to every "
                            "%g s)", t.name, e, RETRY_MAX_S)
            return
        addr = (ip, t.port)
        with self._lock:
            new = addr != t.addr
            late = t.resolve_failures > 0 and t.addr is None
            t.addr, t.due = addr, time.monotonic() + RESOLVE_EVERY_S
            if new:  # a failing target that moved is tried at once; one that didn't keeps its hold
                t.backoff, t.error, t.held_until = RETRY_MIN_S, "", 0.0
        if new:
            log.info("feedback target %s is %s%s", t.name, ip,
                     f" (resolved at last, after {t.resolve_failures} failures)" if late else "")
            self.on_new(addr)

    def hud(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [f"! feedback {t.name} {t.error}, {t.resolve_failures + t.send_failures} tries failed, "
                    f"next in {max(0.0, (t.held_until if t.held_until > now else t.due) - now):.0f} s"
                    for t in self.targets if t.error]

    def summary(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {t.name: {"address": t.addr and t.addr[0], "resolve_failures": t.resolve_failures,
                             "send_failures": t.send_failures} for t in self.targets}

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
