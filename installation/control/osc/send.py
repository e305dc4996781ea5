"""OSC out: every change mirrored to the feedback targets (once per address per frame, no echo to the
sender of an unchanged value), /sync answers, /status every second. A mixin of OscControl."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

from installation.control.osc.wire import MAX_SENDERS, SENDER_TTL_S, build_dgram, out_value
from installation.core.params import Param

log = logging.getLogger("installation.osc")


class OscSend:
    """Feedback, /sync and /status (OscControl's)."""

    def _on_change(self, p: Param, value: Any, source: str) -> None:
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

    def feedback_targets(self) -> list[tuple[str, int]]:
        if not self.settings.feedback_to_sender:
            return list(self.targets)
        now = time.monotonic()
        with self._lock:
            for s, t in list(self._senders.items()):
                if now - t > SENDER_TTL_S:
                    del self._senders[s]
            recent = sorted(self._senders, key=self._senders.__getitem__)[-MAX_SENDERS:]
        return list(dict.fromkeys([*self.targets, *recent]))

    def _send(self, dgram: bytes, target: tuple[str, int]) -> bool:
        try:
            self._sock.sendto(dgram, target)
            self.sent += 1
            if self.feedback.has_errors:
                self.feedback.sent(target)
            return True
        except OSError as e:  # a controller that went away, a full buffer: never the show's problem
            self.send_errors += 1
            if target in self.feedback.addresses():
                self.feedback.failed(target, e)  # held with back-off, its name looked up again
            elif target not in self._send_error_logged:
                self._send_error_logged.add(target)
                log.warning("OSC feedback to %s:%d failed: %s", target[0], target[1], e)
            return False

    def _sync(self, requesters: set[tuple[str, int] | None]) -> None:
        """Every value to the feedback targets and to whoever asked."""
        targets = self.feedback_targets()
        targets += [r for r in requesters if r is not None and r not in targets]
        self._send_values(self.store.targets(), targets)

    def _send_values(self, values: dict[str, Any], targets: list[tuple[str, int]]) -> None:
        for name, v in values.items():
            p = self.registry[name]
            if p.kind == "trigger":
                continue
            dgram = build_dgram(p.address, out_value(p, v))
            for t in targets:
                self._send(dgram, t)

    def status_messages(self, show: Any) -> list[bytes]:
        h = show.counters()  # the same figures as the stats JSON, the heartbeat file and the log
        lat = show.stats.latency_p50()
        out = [build_dgram("/status/fps", float(h["fps"])),
               build_dgram("/status/dropped", int(h["dropped"])),
               build_dgram("/status/errors", int(h["errors"] + self.counters.rejected)),
               build_dgram("/status/heartbeat", int(time.monotonic() - self.t_start)),
               build_dgram("/status/frames", int(h["frames_presented"])),
               build_dgram("/status/reconnects", int(h["reconnects"])),
               build_dgram("/status/memory_mb", float(h["rss_mb"])),
               build_dgram("/status/preset", int(self.presets.current if self.presets else 0)),
               build_dgram("/status/governor", str(h["governor"]["line"]))]  # what it gave up, and why
        if math.isfinite(lat):
            out.insert(1, build_dgram("/status/latency_ms", float(lat)))
        return out
