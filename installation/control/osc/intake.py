"""OSC in, the receiver thread's half: each datagram parsed whole, each message judged at the door (address
or pattern -> Param, value coerced and clamped, protected writes refused, all counted in `InputCounters`),
only the newest value per address kept, and one `wake()` per batch for whoever drains it (OscControl posts
a job to the show, which calls `drain()` on the main thread). /sync requests ride the same batch; the
senders heard lately are kept for `[osc] feedback_to_sender`. The UDP server, the web and replay all come
in here."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installation.control.access import Gate
from installation.control.osc.patterns import Matcher, PatternRefused, is_pattern
from installation.control.osc.wire import (
    MAX_PENDING_TRIGGERS,
    MAX_SENDERS,
    SENDER_TTL_S,
    Malformed,
    judge,
    walk_packet,
)
from installation.core.params import Param, ParamError, Registry

log = logging.getLogger("installation.osc")

Address = tuple[str, int]


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


@dataclass
class Pending:
    """A judged message waiting for the main thread."""
    param: Param
    value: Any
    args: list[Any]
    sender: Address | None
    altered: bool  # clamped or coerced: the sender's fader must hear what the show really uses


@dataclass
class Batch:
    """What came in since the last drain: the newest value per address, then the triggers in order; and
    who asked for /sync (None: a request with no sender, from the web)."""
    values: list[Pending] = field(default_factory=list)
    syncs: set[Address | None] = field(default_factory=set)


class Intake:
    """The door and the waiting room. `receive` runs on the receiver thread (or the web's), `drain` on the
    main thread; the pending table, the /sync requests and the senders are shared under one lock."""

    def __init__(self, registry: Registry, gate: Gate, wake: Callable[[], None], note_senders: bool = False) -> None:
        self.gate = gate
        self.counters = InputCounters()
        self.wake = wake  # the first message since the last drain: someone must drain (once a frame)
        self.note_senders = note_senders
        self.by_address = {p.address: p for p in registry.values()}
        # address patterns: matched by our own automaton over the addresses a pattern may set (no trigger),
        # never by python-osc's Dispatcher, whose regular expressions backtrack (patterns.py)
        self.matcher = Matcher(p.address for p in registry.values() if p.kind != "trigger")
        self._lock = threading.Lock()
        self._pending: dict[str, Pending] = {}
        self._triggers: list[Pending] = []
        self._syncs: set[Address | None] = set()
        self._woken = False
        self._senders: dict[Address, float] = {}

    def allowed(self, host: str, what: str) -> bool:
        """The allow-list for another way in (the web, OSCQuery): a refusal is counted with OSC's."""
        if self.gate.allowed(host, what):
            return True
        self.counters.refused("not allowed", f"({what} from {host})")
        return False

    def sender_allowed(self, host: str) -> bool:
        """The allow-list for a UDP datagram, before it is read."""
        if self.gate.allowed(host):
            return True
        self.counters.add("datagrams")
        self.counters.refused("not allowed", f"(from {host})")
        return False

    def receive(self, data: bytes, client: Address | None) -> None:
        """One datagram: parsed whole first, so a bundle is applied whole or not at all."""
        self.counters.add("datagrams")
        try:
            messages = list(walk_packet(data))
        except Malformed as e:
            self.counters.reject("malformed", "(malformed)", str(e))
            return
        if client is not None and self.note_senders:
            with self._lock:
                self._senders[client] = time.monotonic()
        for msg in messages:
            self.counters.add("messages")
            address = msg.address
            if not is_pattern(address):
                p = self.by_address.get(address)
                if p is not None:
                    self._on_param(client, p, msg.params)
                elif address == "/sync":
                    self._on_sync(client, address)
                else:
                    self.counters.reject("unknown address", address, "no such parameter (see `installation osc-map`)")
                continue
            # an OSC address pattern, matched without a regular expression (patterns.py); it may only set
            # values, never fire a trigger (a stray '/*/*' must not save over a preset): the matcher holds no trigger
            try:
                hits = self.matcher.match(address)
            except PatternRefused as e:
                self.counters.reject("pattern refused", address, str(e))
                continue
            for a in hits:
                self._on_param(client, self.by_address[a], msg.params)
            if not hits:
                self.counters.reject("unknown address", address, "the pattern matches no parameter")

    def admit(self, p: Param, args: list[Any] | tuple[Any, ...], where: str = "") -> tuple[Any, bool] | None:
        """(value, altered) for `p`, or None: a trigger's release, or a bad value or a refused write,
        counted and named (`where` says it came from a recording rather than the wire)."""
        try:
            judged = judge(p, args)
        except ParamError as e:
            self.counters.reject("bad value", p.address, f"{where}{e}")
            return None
        if judged is None:
            return None
        refusal = self.gate.write_refusal(p.name)
        if refusal:
            self.gate.count_write_refused()
            self.counters.reject("write refused", p.address, f"{where}{refusal}")
            return None
        return judged

    def drain(self) -> Batch:
        """Main thread: everything waiting, at once; the next message wakes the drainer again."""
        with self._lock:
            pending, self._pending = self._pending, {}
            triggers, self._triggers = self._triggers, []
            syncs, self._syncs = self._syncs, set()
            self._woken = False
        return Batch([*pending.values(), *triggers], syncs)

    def recent_senders(self) -> list[Address]:
        """The senders heard within SENDER_TTL_S, the newest MAX_SENDERS of them, oldest first."""
        now = time.monotonic()
        with self._lock:
            for s, t in list(self._senders.items()):
                if now - t > SENDER_TTL_S:
                    del self._senders[s]
            return sorted(self._senders, key=self._senders.__getitem__)[-MAX_SENDERS:]

    def _on_sync(self, client: Address | None, address: str) -> None:
        with self._lock:  # a flood of /sync must not become a flood of jobs: one per frame, per requester
            if len(self._syncs) >= MAX_SENDERS:
                self.counters.reject("flood", address, "too many /sync requests in one frame")
                return
            self._syncs.add(client)
            wake = self._claim_wake()
        self._accepted(wake)

    def _on_param(self, client: Address | None, p: Param, args: list[Any]) -> None:
        judged = self.admit(p, args)
        if judged is None:
            return
        value, altered = judged
        item = Pending(p, value, list(args), client, altered)
        with self._lock:
            if p.kind == "trigger":
                if len(self._triggers) >= MAX_PENDING_TRIGGERS:
                    self.counters.reject("flood", p.address, "too many triggers in one frame")
                    return
                self._triggers.append(item)
            else:
                if p.name in self._pending:
                    self.counters.add("coalesced")
                self._pending[p.name] = item
            wake = self._claim_wake()
        self._accepted(wake)

    def _claim_wake(self) -> bool:
        """Under _lock: True for the first message since the last drain, which must wake the drainer."""
        first, self._woken = not self._woken, True
        return first

    def _accepted(self, wake: bool) -> None:
        self.counters.add("accepted")
        if wake:
            self.wake()
