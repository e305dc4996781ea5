"""OSC in: the receiver thread's half of OscControl. Each datagram parsed whole, each message judged at
the door (address or pattern -> Param, value coerced and clamped, protected writes refused, all counted),
only the newest value per address kept in the pending table, and one job per frame handed to
the show (ShowHandle.post); /sync requests ride the same job. A mixin of OscControl, which applies the job on the main
thread (osc.py), as OscSend (oscsend.py) is its way out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from installation.control.access import Gate
from installation.control.osc.patterns import Matcher, PatternRefused, is_pattern
from installation.control.osc.server import InputCounters, _Pending
from installation.control.osc.wire import (
    MAX_PENDING_TRIGGERS,
    MAX_SENDERS,
    Malformed,
    OscSettings,
    judge,
    walk_packet,
)
from installation.core.params import Param, ParamError


class OscReceive:
    """Judging what comes in and handing it over (OscControl's)."""

    # set by OscControl.__init__: the state this half shares with the main thread's, under _lock
    show: Any
    settings: OscSettings
    counters: InputCounters
    gate: Gate
    matcher: Matcher
    _by_address: dict[str, Param]
    _lock: threading.Lock
    _pending: dict[str, _Pending]
    _pending_triggers: list[_Pending]
    _sync_requests: set[tuple[str, int] | None]
    _job_queued: bool
    _senders: dict[tuple[str, int], float]
    _apply_pending: Callable[[Any], None]

    def allowed(self, host: str, what: str) -> bool:
        """The allow-list for another way in (the web, OSCQuery): a refusal is counted with OSC's."""
        if self.gate.allowed(host, what):
            return True
        self.counters.refused("not allowed", f"({what} from {host})")
        return False

    def receive(self, data: bytes, client: tuple[str, int] | None) -> None:
        """One datagram: parsed whole first, so a bundle is applied whole or not at all."""
        self.counters.add("datagrams")
        try:
            messages = list(walk_packet(data))
        except Malformed as e:
            self.counters.reject("malformed", "(malformed)", str(e))
            return
        if client is not None and self.settings.feedback_to_sender:
            with self._lock:
                self._senders[client] = time.monotonic()
        for msg in messages:
            self.counters.add("messages")
            address = msg.address
            if not is_pattern(address):
                p = self._by_address.get(address)
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
                self._on_param(client, self._by_address[a], msg.params)
            if not hits:
                self.counters.reject("unknown address", address, "the pattern matches no parameter")

    def _on_sync(self, client: Any, address: str) -> None:
        with self._lock:  # a flood of /sync must not become a flood of jobs: one per frame, per requester
            if len(self._sync_requests) >= MAX_SENDERS:
                self.counters.reject("flood", address, "too many /sync requests in one frame")
                return
            self._sync_requests.add(client)
            queue_job = self._claim_job()
        self._accepted(queue_job)

    def _on_param(self, client: Any, p: Param, args: list[Any]) -> None:
        judged = self._admit(p, args)
        if judged is None:
            return
        value, altered = judged
        item = _Pending(p, value, list(args), client, altered)
        with self._lock:
            if p.kind == "trigger":
                if len(self._pending_triggers) >= MAX_PENDING_TRIGGERS:
                    self.counters.reject("flood", p.address, "too many triggers in one frame")
                    return
                self._pending_triggers.append(item)
            else:
                if p.name in self._pending:
                    self.counters.add("coalesced")
                self._pending[p.name] = item
            queue_job = self._claim_job()
        self._accepted(queue_job)

    def _admit(self, p: Param, args: list[Any] | tuple[Any, ...], where: str = "") -> tuple[Any, bool] | None:
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

    def _claim_job(self) -> bool:
        """Under _lock: True for the first message since the last job ran, which must queue the next one."""
        first, self._job_queued = not self._job_queued, True
        return first

    def _accepted(self, queue_job: bool) -> None:
        self.counters.add("accepted")
        if queue_job:
            self.show.post(self._apply_pending)
