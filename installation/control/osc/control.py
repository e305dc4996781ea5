"""OscControl: live control of one show over OSC, composed of an intake (the receiver thread's door and
waiting room, osc/intake.py), a UDP server handed that intake (osc/server.py) and a feedback sender (the
way out, osc/feedback.py); with OSC record and replay (osc/replay.py). It applies what the intake drained
on the main thread, once a frame. docs/osc.md tells the path of a parameter and why it runs this way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from installation.control.access import Gate
from installation.control.osc.feedback import FeedbackSender, Resolver
from installation.control.osc.intake import InputCounters, Intake, Pending
from installation.control.osc.replay import GatedSource, OscRecorder, OscReplay, read_recording
from installation.control.osc.server import OscServer, RetryingServer
from installation.control.osc.wire import OscSettings
from installation.control.presets import PresetBank
from installation.core.params import ParamError
from installation.core.state import remove_log_file
from installation.show.handle import ShowHandle

log = logging.getLogger("installation.osc")


class OscControl:
    """Live control of one show over OSC. A surface (ShowHandle.add): update(show) on the main thread
    applies what came in and sends feedback and status; the receiver thread only judges messages and wakes
    the main thread (ShowHandle.post)."""

    retry_s = 2.0

    def __init__(self, show: ShowHandle, settings: OscSettings, presets: PresetBank | None = None,
                 recorder: OscRecorder | None = None, replay_file: Path | None = None,
                 resolve: Resolver | None = None) -> None:
        self.show = show
        self.settings = settings
        self.store = show.store
        self.presets = presets
        self.recorder = recorder
        self.log_handler: logging.Handler | None = None
        gate = Gate(settings.allow, settings.writes, settings.grabs, getattr(show, "stats", None))
        self.intake = Intake(show.registry, gate, lambda: show.post(self._apply), settings.feedback_to_sender)
        self.feedback = FeedbackSender(
            show.registry, show.store, settings.feedback if settings.enabled else [], resolve,
            recent=self.intake.recent_senders if settings.feedback_to_sender else None,
            rejected=lambda: self.intake.counters.rejected,
            preset=lambda: presets.current if presets is not None else 0)

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

        self.server: RetryingServer | None = None
        if settings.enabled and not settings.udp:
            log.info("OSC over UDP off ([osc] udp, or [web] token set): values change over the web and "
                     "OSCQuery's WebSocket only; feedback still goes out")
        if settings.enabled and settings.udp:
            self.server = RetryingServer("OSC", settings.port,
                                         lambda: OscServer((settings.host, settings.port), self.intake), self.retry_s)

    @property
    def port(self) -> int:
        return self.server.port if self.server else 0

    @property
    def counters(self) -> InputCounters:
        return self.intake.counters

    @property
    def gate(self) -> Gate:
        return self.intake.gate

    @property
    def taps(self) -> list[Callable[[list[str]], None]]:
        """Who else hears of each frame's changes (the web server: control/web/surface.py), as addresses."""
        return self.feedback.taps

    def status_messages(self, show: ShowHandle) -> list[bytes]:
        return self.feedback.status_messages(show)

    # ---- the main thread ------------------------------------------------------------------------
    def _apply(self, show: ShowHandle) -> None:
        batch = self.intake.drain()
        for item in batch.values:
            self._set(item, "osc")
        if batch.syncs:
            self.feedback.sync(batch.syncs)

    def _set(self, item: Pending, source: str) -> None:
        p = item.param
        try:
            with self.feedback.from_sender(None if item.altered else item.sender):
                self.store.set(p.name, item.value, source=source)
        except ParamError as e:  # judged already; only a parameter that changed under us gets here
            self.counters.reject("bad value", p.address, str(e))
            return
        if self.recorder is not None and source == "osc":
            self.recorder.write(self.source_gate.taken + 1 if self.source_gate else -1, p.address, item.args)

    def _apply_replayed(self, address: str, args: list[Any]) -> None:
        p = self.intake.by_address.get(address)
        if p is None:
            self.counters.reject("unknown address", address, "in the replayed recording")
            return
        judged = self.intake.admit(p, args, "in the replayed recording: ")
        if judged is not None:
            self._set(Pending(p, judged[0], args, None, True), "replay")

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
        if self.settings.enabled:
            self.feedback.update(show)

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
            lines.extend(self.feedback.targets.hud())
            if self.server.error:
                lines.append("! " + self.server.error)
        if self.replay is not None:
            mode = "frames" if self.replay.lockstep else "time"
            lines.append(f"osc replay {self.replay.next}/{len(self.replay.messages)} by {mode}")
        if self.recorder is not None:
            lines.append(f"osc recording {self.recorder.count} msgs -> {self.recorder.path.name}")
        return lines

    def summary(self) -> dict[str, Any]:
        fb = self.feedback.summary()
        return self.counters.snapshot() | {"port": self.port, "sent": fb["sent"], "send_errors": fb["send_errors"],
                                           "refused_senders": dict(self.gate.refused), "feedback": fb["feedback"]}

    def close(self) -> None:
        self.feedback.close()
        if self.replay is not None:
            self.replay.close()
        if self.server is not None:
            self.server.close()
        if self.recorder is not None:
            self.recorder.close()
        remove_log_file(self.log_handler)
