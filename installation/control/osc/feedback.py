"""OSC out: `FeedbackSender` mirrors every change, from any source (OSC, keys, presets, replay, the API), on
the same address to the feedback targets, at most once per address per frame (bools as 0/1, choices as
their index, ramps as their target), answers /sync with every value and sends /status every second.
No echo loops: a value a controller sent, stored unchanged, is not sent back to that controller; a
clamped or coerced one is (its fader must jump to what the show really uses); a controller that echoes a
value back changes nothing, so the store, which ignores unchanged values, ends the exchange.

`FeedbackTargets`: targets that come late or move: a controller whose name doesn't resolve at boot (the
venue's network comes up after the show) or whose address changes (DHCP) must still get feedback.

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

import contextlib
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from installation.control.osc.wire import STATUS_EVERY_S, build_dgram, out_value
from installation.core.params import Param, ParamStore, Registry

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


class FeedbackSender:
    """Feedback, /sync and /status. The store listener (`on_change`) runs on any thread and only notes the
    change; `update()` sends on the main thread. Handed the registry and store it mirrors, the targets, and
    where the senders heard lately (`recent`, with [osc] feedback_to_sender), the input's refusals and the
    preset in use come from."""

    def __init__(self, registry: Registry, store: ParamStore, targets: list[Address], resolve: Resolver | None = None,
                 recent: Callable[[], list[Address]] | None = None, rejected: Callable[[], int] = lambda: 0,
                 preset: Callable[[], int] = lambda: 0) -> None:
        self.registry = registry
        self.store = store
        self.recent = recent
        self.rejected = rejected
        self.preset = preset
        self.t_start = time.monotonic()
        self.sent = 0
        self.send_errors = 0
        self.taps: list[Callable[[list[str]], None]] = []  # who else hears of each frame's changes, as addresses
        self._lock = threading.Lock()
        self._out: dict[str, tuple[Any, Address | None]] = {}
        self._echo_skip: tuple[int, Address] | None = None
        self._new_targets: set[Address] = set()  # reachable since the last frame: send them everything
        self._t_status = 0.0
        self._send_error_logged: set[Address] = set()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.targets = FeedbackTargets(targets, self._on_new_target, resolve)
        store.subscribe(self.on_change)

    def _on_new_target(self, addr: Address) -> None:
        with self._lock:
            self._new_targets.add(addr)

    @contextlib.contextmanager
    def from_sender(self, sender: Address | None) -> Iterator[None]:
        """Changes made inside come from `sender` unaltered: not echoed back to it (this thread only)."""
        self._echo_skip = (threading.get_ident(), sender) if sender is not None else None
        try:
            yield
        finally:
            self._echo_skip = None

    def on_change(self, p: Param, value: Any, source: str) -> None:
        """A store listener: any thread. Only notes the change; update() sends it."""
        if p.kind == "trigger":
            return
        skip = self._echo_skip
        exclude = skip[1] if skip is not None and skip[0] == threading.get_ident() else None
        with self._lock:
            prev = self._out.get(p.address)
            if prev is not None and prev[1] != exclude:
                exclude = None
            self._out[p.address] = (out_value(p, value), exclude)

    def addresses(self) -> list[Address]:
        """Where feedback goes now: the targets that can be reached, and the senders heard lately."""
        reachable = self.targets.addresses()
        if self.recent is None:
            return reachable
        return list(dict.fromkeys([*reachable, *self.recent()]))

    def update(self, show: Any) -> None:
        """Main thread, once a frame: every value to targets new since the last frame, this frame's changes
        to all (and to the taps), /status when due."""
        now = time.monotonic()
        targets = self.addresses()
        with self._lock:
            new, self._new_targets = self._new_targets, set()
        if new:  # a controller present at start, or one that came late or moved: every value, at once
            self._send_values(self.store.targets(), [t for t in new if t in targets])
        with self._lock:
            out, self._out = self._out, {}
        if out:
            for tap in self.taps:
                tap(list(out))
        for address, (v, exclude) in out.items():
            dgram = build_dgram(address, v)
            for t in targets:
                if t != exclude:
                    self.send(dgram, t)
        if now - self._t_status >= STATUS_EVERY_S and targets:
            self._t_status = now
            for dgram in self.status_messages(show):
                for t in targets:
                    self.send(dgram, t)

    def send(self, dgram: bytes, target: Address) -> bool:
        try:
            self._sock.sendto(dgram, target)
            self.sent += 1
            if self.targets.has_errors:
                self.targets.sent(target)
            return True
        except OSError as e:  # a controller that went away, a full buffer: never the show's problem
            self.send_errors += 1
            if target in self.targets.addresses():
                self.targets.failed(target, e)  # held with back-off, its name looked up again
            elif target not in self._send_error_logged:
                self._send_error_logged.add(target)
                log.warning("OSC feedback to %s:%d failed: %s", target[0], target[1], e)
            return False

    def sync(self, requesters: set[Address | None]) -> None:
        """Every value to the feedback targets and to whoever asked."""
        targets = self.addresses()
        targets += [r for r in requesters if r is not None and r not in targets]
        self._send_values(self.store.targets(), targets)

    def _send_values(self, values: dict[str, Any], targets: list[Address]) -> None:
        for name, v in values.items():
            p = self.registry[name]
            if p.kind == "trigger":
                continue
            dgram = build_dgram(p.address, out_value(p, v))
            for t in targets:
                self.send(dgram, t)

    def status_messages(self, show: Any) -> list[bytes]:
        h = show.counters()  # the same figures as the stats JSON, the heartbeat file and the log
        lat = show.stats.latency_p50()
        out = [build_dgram("/status/fps", float(h["fps"])),
               build_dgram("/status/dropped", int(h["dropped"])),
               build_dgram("/status/errors", int(h["errors"] + self.rejected())),
               build_dgram("/status/heartbeat", int(time.monotonic() - self.t_start)),
               build_dgram("/status/frames", int(h["frames_presented"])),
               build_dgram("/status/reconnects", int(h["reconnects"])),
               build_dgram("/status/memory_mb", float(h["rss_mb"])),
               build_dgram("/status/preset", int(self.preset())),
               build_dgram("/status/governor", str(h["governor"]["line"]))]  # what it gave up, and why
        if math.isfinite(lat):
            out.insert(1, build_dgram("/status/latency_ms", float(lat)))
        return out

    def summary(self) -> dict[str, Any]:
        return {"sent": self.sent, "send_errors": self.send_errors, "feedback": self.targets.summary()}

    def close(self) -> None:
        self.targets.close()
        self._sock.close()
