"""The web as a control surface of the show (update(show) / close(), on the main thread): it starts the web
server (server.py) and zeroconf (advertise.py), and hands the server what only the main thread may read.

  changes     OSC feedback's own record of what changed this frame (OscControl.taps): the server reads
              those values from the store and pushes them to every listening client, so a change from
              OSC, a preset, a key, MIDI or another panel reaches every panel within a frame or two
  status      every second the health figures (show.health.counters, the same as the stats JSON and the
              heartbeat), the schedule's look, the preset, OSC and web counters; /status/* to listeners
  tree        every second the models in the show's folders and the saved presets: when they change, the
              tree does, and listening clients hear PATH_CHANGED
  thumbnail   while someone watches the status page, twice a second the picture as presented, from the
              frame's one readback (shared with --record and the outputs), made on the GL thread and
              encoded on the server's; off with [web] thumbnail = false
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pythonosc.osc_message import OscMessage

from installation.control.net import is_loopback
from installation.control.osc.control import OscControl
from installation.control.presets import PresetBank
from installation.control.web.advertise import Advertiser
from installation.control.web.server import Hooks, WebServer, WebSettings
from installation.show.schedule import ScheduleControl

log = logging.getLogger("installation.web")

STATUS_EVERY_S = 1.0
TREE_EVERY_S = 1.0
THUMB_EVERY_S = 0.5


def model_names(dirs: list[Path]) -> list[str]:
    """The models /model/select can name by a bare name, first folder first (the one find_model takes)."""
    names: list[str] = []
    for d in dirs:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for e in entries:
            if (e / "model.onnx").is_file():
                names.append(e.name)
            elif e.suffix == ".onnx" and e.is_file():
                names.append(e.stem)
    return list(dict.fromkeys(names))


class ThumbnailTap:
    """The status page's thumbnail as one more user of the frame's one readback: it stands in the show's
    output stage (`show.outputs`, which Show.view hands the presented picture, or how to read it, before
    the flip) and passes everything on to the stage that was there. Main thread only."""

    def __init__(self, inner: Any, due: Callable[[], bool], take: Callable[[np.ndarray], None]) -> None:
        self.inner = inner
        self.due = due
        self.take = take

    def present(self, picture: np.ndarray | Callable[[], np.ndarray], t_capture: float) -> np.ndarray | None:
        if self.inner is not None:
            read = self.inner.present(picture, t_capture)
            picture = picture if read is None else read
        if not self.due():
            return picture if isinstance(picture, np.ndarray) else None
        if not isinstance(picture, np.ndarray):
            picture = picture()
        self.take(picture)
        return picture


class WebControl:
    """The panel, the status page and OSCQuery of one show."""

    def __init__(self, show: Any, osc: OscControl, presets: PresetBank | None, settings: WebSettings) -> None:
        self.osc = osc
        self.presets = presets
        self.settings = settings
        intake = osc.intake
        hooks = Hooks(intake=lambda data: intake.receive(data, None), allowed=lambda host: intake.allowed(host, "web"),
                      write_refusal=intake.gate.write_refusal, reject=intake.counters.reject,
                      osc_port=lambda: osc.port, writes=intake.gate.writes, count=show.stats.count)
        self.server = WebServer(settings, show.store, hooks)
        osc.taps.append(self._changed)
        self.model_dirs: list[Path] = show.model_dirs()
        self.schedule = show.find(ScheduleControl)
        self.advertiser: Advertiser | None = None
        query_port = self.server.ports.get("oscquery")
        if query_port and not is_loopback(settings.host):  # OSCQuery is served: announce it, UDP or not
            udp_port = osc.port if osc.server is not None and osc.server.listening else 0
            self.advertiser = Advertiser(settings.name, settings.host, query_port, udp_port)
        self._vals: dict[str, list[Any]] = {}
        self._t_status = self._t_tree = self._t_thumb = float("-inf")
        if settings.thumbnail and settings.port:
            show.tap_outputs(lambda stage: ThumbnailTap(stage, self._thumb_due, self._thumb))

    def _changed(self, addresses: list[str]) -> None:
        """Main thread (OscControl.update): the addresses whose values changed this frame, handed over once
        a frame (the server's kept tree goes stale, its listeners hear them)."""
        if addresses:
            self.server.call(self.server.changed, [a.lstrip("/") for a in addresses])

    def update(self, show: Any) -> None:
        now = time.monotonic()
        if now - self._t_status >= STATUS_EVERY_S:
            self._t_status = now
            dgrams = self.osc.status_messages(show)  # /status/*, as OSC feedback sends them
            figures = {m.address.removeprefix("/status/"): m.params[0] for m in map(OscMessage, dgrams)}
            self.server.call(self.server.set_status, self.status(show), figures, dgrams)
        if now - self._t_tree >= TREE_EVERY_S:
            self._t_tree = now
            vals: dict[str, list[Any]] = {"model/select": model_names(self.model_dirs)}
            if self.presets is not None:
                vals["preset/recall"] = self.presets.slots()
            if vals != self._vals:
                self._vals = vals
                self.server.call(self.server.set_vals, vals)

    def _thumb_due(self) -> bool:
        now = time.monotonic()
        if now < self.server.thumb_wanted_until and now - self._t_thumb >= THUMB_EVERY_S:
            self._t_thumb = now
            return True
        return False

    def _thumb(self, picture: np.ndarray) -> None:
        self.server.call(self.server.set_thumbnail, picture)

    def status(self, show: Any) -> dict[str, Any]:
        """What the status page shows: the health counters (the one source) and what the show is doing."""
        h = show.counters()
        snap = show.snapshot
        look = {"look": self.schedule.look, "why": self.schedule.why} if self.schedule is not None else None
        osc = self.osc.counters.snapshot()
        return h | {
            "show": show.cfg.name,
            "blackout": bool(snap.get("show/blackout", False)), "freeze": bool(snap.get("show/freeze", False)),
            "schedule": look,
            "preset": self.presets.current if self.presets is not None else 0,
            "osc": {"port": self.osc.port, "accepted": osc["accepted"], "rejected": osc["rejected"],
                    "reasons": osc["reasons"], "last_reject": osc["last_reject"]},
        }

    def hud(self, show: Any) -> list[str]:
        s = self.server
        lines = [f"web :{s.ports.get('web', '-')}  oscquery :{s.ports.get('oscquery', '-')}  "
                 f"clients {len(s.sessions)}"]
        refused = sum(v for k, v in s.counters.items() if k.startswith("refused"))
        if refused or s.counters["clients dropped"]:
            lines[0] += f"  refused {refused}  dropped {s.counters['clients dropped']}"
        if s.error:
            lines.append("! " + s.error)
        if self.advertiser is not None:
            lines.extend(self.advertiser.hud())
        return lines

    def summary(self) -> dict[str, Any]:
        return self.server.summary()

    def close(self) -> None:
        if self.advertiser is not None:
            self.advertiser.close()
        self.server.close()
