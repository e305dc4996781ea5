"""Live control over OSC: OscControl, the control surface that judges what the receiver thread hears and
applies it on the main thread (the wire is oscwire.py, the server oscserver.py, the receiver thread's
judging oscreceive.py, the way out oscsend.py).

The path of a parameter: OSC datagram -> this module's receiver thread (allow-list, parse, address ->
Param, coerce and clamp, count) -> a pending table, latest value per address -> ONE job posted to the show ->
Show.update() on the main thread: ParamStore.set() -> store listeners (feedback, live state) -> the next
frame's snapshot. The receiver thread never touches the store or the show: it only judges messages and
hands them over, so no lock is held across a frame and nothing a controller sends can stall the loop.

Why BlockingOSCUDPServer on one thread (not ThreadingOSCUDPServer, not asyncio): ThreadingOSCUDPServer
starts a thread per datagram, so a fader's 0.50 then 0.51 can be applied in either order, and a flood of
thousands of datagrams a second becomes thousands of thread starts on a 2-core machine, stealing the
render loop's time. One thread handles datagrams in arrival order at a bounded cost each; the only work
it does is parsing and a dict update. asyncio would add an event loop for the same single thread.

Floods: per address only the newest value waits for the next frame (older ones count as 'coalesced'),
and at most one job per frame enters the inbox, so the main thread's work per frame is bounded by the
number of addresses, not by the message rate. Bundles: every message of a bundle lands in the same frame;
timetags are not waited for (python-osc's strict_timing=False, done here by parsing bundles ourselves).

Bad input (unknown address, wrong type or count, NaN/inf, malformed datagrams) is dropped, counted per
address and per reason, logged at most once a second per address (and at most 20 lines a second in all),
and shown in the HUD. Numbers out of range are clamped. Senders outside the allow-list and protected
writes the show doesn't allow are refused at the door (access.py): counted, named once, shown in the HUD.

Feedback: every change, from any source (OSC, keys, presets, replay, the API), is mirrored on the same
address to the feedback targets, at most once per address per frame, with bools as 0/1, choices as their
index and the rest as they are; ramps mirror their target at once. No echo loops: a value a controller
sent, stored unchanged, is not sent back to that controller; a clamped or coerced one is (its fader
must jump to what the show really uses); and a controller that echoes a value back changes nothing, so
the store, which ignores unchanged values, ends the exchange.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from installation.control.access import Gate
from installation.control.osc.feedback import FeedbackTargets, Resolver
from installation.control.osc.intake import OscReceive
from installation.control.osc.patterns import Matcher
from installation.control.osc.replay import GatedSource, OscRecorder, OscReplay, read_recording
from installation.control.osc.send import OscSend
from installation.control.osc.server import InputCounters, RetryingServer, _OscUDPServer, _Pending
from installation.control.osc.wire import STATUS_EVERY_S, OscSettings, build_dgram
from installation.control.presets import PresetBank
from installation.core.params import ParamError, Registry
from installation.core.state import remove_log_file
from installation.show.handle import ShowHandle

log = logging.getLogger("installation.osc")


# ---- the control ------------------------------------------------------------------------------------------


class OscControl(OscReceive, OscSend):
    """Live control of one show over OSC. A surface (ShowHandle.add): update(show) on the main thread
    sends feedback and status; the receiver thread only judges messages and posts them (ShowHandle.post)."""

    retry_s = 2.0

    def __init__(self, show: ShowHandle, settings: OscSettings, presets: PresetBank | None = None,
                 recorder: OscRecorder | None = None, replay_file: Path | None = None,
                 resolve: Resolver | None = None) -> None:
        self.show = show
        self.settings = settings
        self.registry: Registry = show.registry
        self.store = show.store
        self.presets = presets
        self.recorder = recorder
        self.counters = InputCounters()
        self.t_start = time.monotonic()
        self.log_handler: logging.Handler | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_triggers: list[_Pending] = []
        self._sync_requests: set[tuple[str, int] | None] = set()
        self._job_queued = False
        self._senders: dict[tuple[str, int], float] = {}
        self._out: dict[str, tuple[Any, tuple[str, int] | None]] = {}
        self._echo_skip: tuple[int, tuple[str, int]] | None = None
        self._t_status = 0.0
        self._new_targets: set[tuple[str, int]] = set()  # reachable since the last frame: send them everything
        self.sent = 0
        self.send_errors = 0
        self._send_error_logged: set[tuple[str, int]] = set()
        self._by_address = {p.address: p for p in self.registry.values()}
        self.gate = Gate(settings.allow, settings.writes, settings.grabs, getattr(show, "stats", None))

        # address patterns: matched by our own automaton over the addresses a pattern may set (no trigger),
        # never by python-osc's Dispatcher, whose regular expressions backtrack (patterns.py)
        self.matcher = Matcher(p.address for p in self.registry.values() if p.kind != "trigger")

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.feedback = FeedbackTargets(settings.feedback if settings.enabled else [], self._on_new_target,
                                        resolve)

        self.store.subscribe(self._on_change)

        self.source_gate: GatedSource | None = None
        self.replay: OscReplay | None = None
        if replay_file is not None:
            fps = show.source_fps or 30.0
            self.replay = OscReplay(read_recording(replay_file), self._apply_replayed, show.opts.lockstep, fps)
        if (recorder is not None or self.replay is not None) and show.has_source:
            self.source_gate = show.gate_source(
                lambda source: GatedSource(source, self._on_frame, self.replay.close if self.replay else None))
        if self.replay is not None and self.replay.lockstep:
            # ramps and smoothing run on the frame clock, so a rehearsal glides the same way every time
            replay = self.replay
            self.store.use_clock(lambda: replay.frame_clock)

        # who else hears of each frame's changes (the web server: control/web/surface.py), as addresses
        self.taps: list[Callable[[list[str]], None]] = []
        self.server: RetryingServer | None = None
        if settings.enabled and not settings.udp:
            log.info("OSC over UDP off ([osc] udp, or [web] token set): values change over the web and "
                     "OSCQuery's WebSocket only; feedback still goes out")
        if settings.enabled and settings.udp:
            self.server = RetryingServer("OSC", settings.port,
                                         lambda: _OscUDPServer((settings.host, settings.port), self), self.retry_s)

    @property
    def port(self) -> int:
        return self.server.port if self.server else 0

    @property
    def targets(self) -> list[tuple[str, int]]:
        """The feedback targets that can be reached now (resolved, not held after a failure)."""
        return self.feedback.addresses()

    def _on_new_target(self, addr: tuple[str, int]) -> None:
        with self._lock:
            self._new_targets.add(addr)

    # ---- the main thread ------------------------------------------------------------------------
    def _apply_pending(self, show: ShowHandle) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            triggers, self._pending_triggers = self._pending_triggers, []
            syncs, self._sync_requests = self._sync_requests, set()
            self._job_queued = False
        for item in [*pending.values(), *triggers]:
            self._set(item, "osc")
        if syncs:
            self._sync(syncs)

    def _set(self, item: _Pending, source: str) -> None:
        p = item.param
        if item.sender is not None and not item.altered:
            self._echo_skip = (threading.get_ident(), item.sender)
        try:
            self.store.set(p.name, item.value, source=source)
        except ParamError as e:  # judged already; only a parameter that changed under us gets here
            self.counters.reject("bad value", p.address, str(e))
            return
        finally:
            self._echo_skip = None
        if self.recorder is not None and source == "osc":
            self.recorder.write(self.source_gate.taken + 1 if self.source_gate else -1, p.address, item.args)

    def _apply_replayed(self, address: str, args: list[Any]) -> None:
        p = self._by_address.get(address)
        if p is None:
            self.counters.reject("unknown address", address, "in the replayed recording")
            return
        judged = self._admit(p, args, "in the replayed recording: ")
        if judged is not None:
            self._set(_Pending(p, judged[0], args, None, True), "replay")

    def _on_frame(self, index: int) -> None:
        """Inference thread, before frame `index` is processed."""
        if self.replay is not None and self.replay.lockstep:
            self.replay.before_frame(index, self.show.post, self.store)


    def update(self, show: ShowHandle) -> None:
        now = time.monotonic()
        if self.replay is not None:
            self.replay.update(now)
        if self.recorder is not None:
            self.recorder.update(now)
        if not self.settings.enabled:
            return
        targets = self.feedback_targets()
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
                    self._send(dgram, t)
        if now - self._t_status >= STATUS_EVERY_S and targets:
            self._t_status = now
            for dgram in self.status_messages(show):
                for t in targets:
                    self._send(dgram, t)


    def hud(self, show: ShowHandle) -> list[str]:
        lines = []
        if self.settings.enabled and not self.settings.udp:
            lines.append("osc: UDP off (values change over the web only)")
        if self.server is not None:
            c = self.counters.snapshot()
            head = f"osc :{self.port}  in {c['accepted']}"
            if c["coalesced"]:
                head += f"  coalesced {c['coalesced']}"
            if c["rejected"]:
                why = ", ".join(f"{k} {v}" for k, v in sorted(c["reasons"].items()))
                head += f"  dropped {c['rejected']} ({why})"
            lines.append(head)
            if c["last_reject"]:
                lines.append(f"osc last dropped: {c['last_reject']}")
            lines.extend(self.gate.hud())
            lines.extend(self.feedback.hud())
            if self.server is not None and self.server.error:
                lines.append("! " + self.server.error)
        if self.replay is not None:
            mode = "frames" if self.replay.lockstep else "time"
            lines.append(f"osc replay {self.replay.next}/{len(self.replay.messages)} by {mode}")
        if self.recorder is not None:
            lines.append(f"osc recording {self.recorder.count} msgs -> {self.recorder.path.name}")
        return lines

    def summary(self) -> dict[str, Any]:
        return self.counters.snapshot() | {"port": self.port, "sent": self.sent, "send_errors": self.send_errors,
                                           "refused_senders": dict(self.gate.refused),
                                           "feedback": self.feedback.summary()}

    def close(self) -> None:
        self.feedback.close()
        if self.replay is not None:
            self.replay.close()
        if self.server is not None:
            self.server.close()
        self._sock.close()
        if self.recorder is not None:
            self.recorder.close()
        remove_log_file(self.log_handler)
