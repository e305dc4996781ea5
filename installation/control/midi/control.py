"""MIDI in: a controller's faders, knobs and pads as live parameters, with MIDI learn.

The path is OSC's: the port's callback thread (mido over python-rtmidi) turns a message into a value
through the show's bindings, scaled to the parameter's range, and keeps only the newest value per
parameter; ONE job per frame is posted to the show (ShowHandle.post), and Show.update() sets it in the
ParamStore on the main thread (coerce, clamp, count, feedback, live state). The MIDI threads never touch the store.

Bindings, in the show (`[midi.map]`) and learned (`midi.json` in the state folder, which wins):
  "cc CH N"    controller N (0..127) on channel CH (1..16), 7 bits
  "cc14 CH N"  controller N (0..31) as the high byte and N+32 as the low byte: 14 bits, for fine faders
  "note CH N"  note N: a trigger fires on note on; a bool toggles on note on; a number takes the velocity
  "pb CH"      the pitch bend wheel (14 bits)
A bool bound to a controller is on at 64 and above; a trigger fires when a controller crosses 64 upwards.

Ports are polled at a low rate on a thread of their own: a controller plugged in after the start is
picked up, and one that vanished is reopened when it returns. Where the machine has no MIDI at all (no
ALSA sequencer) the show says so once and plays on.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from installation.control.midi.bindings import Binding, MidiConfig, check_midi, check_target, parse_binding
from installation.control.midi.ports import PortWatcher, list_ports
from installation.core.params import Param, ParamError, Registry

log = logging.getLogger("installation.midi")

MIDI_FILE = "midi.json"
LSB_PAIR_S = 0.5  # a learned controller whose low byte (N+32) follows this soon is learned as 14-bit

PARAMS: list[Param] = [
    Param("midi/learn", "str", "", persist=False,
          description="bind the next moved MIDI control to this parameter (e.g. mix/amount); empty: not learning"),
]


def scale(p: Param, raw: int, full: int) -> Any:
    """A controller's raw value (0..full) as the parameter's value, over its whole range."""
    x = max(0, min(raw, full)) / full
    if p.kind == "bool":
        return x >= 0.5
    if p.kind == "choice":
        return p.choices[min(int(x * len(p.choices)), len(p.choices) - 1)]
    assert p.lo is not None and p.hi is not None
    v = p.lo + x * (p.hi - p.lo)
    return round(v) if p.kind == "int" else v


def binding_of(msg: Any) -> tuple[Binding, int] | None:
    """The control a mido message moved and its raw value; None for messages nothing can bind to."""
    t = msg.type
    if t == "control_change":
        return Binding("cc", msg.channel + 1, msg.control), msg.value
    if t in ("note_on", "note_off"):
        return Binding("note", msg.channel + 1, msg.note), msg.velocity if t == "note_on" else 0
    if t == "pitchwheel":
        return Binding("pb", msg.channel + 1), msg.pitch + 8192
    return None


class MidiControl:
    """MIDI for one show. feed() is the entry point of every message (the port's callback calls it, on its
    thread); update(show) on the main thread does nothing per frame but keep the learn state current."""

    def __init__(self, show: Any, cfg: MidiConfig, bindings: dict[Binding, str], folder: Path | None) -> None:
        self.show = show
        self.cfg = cfg
        self.registry: Registry = show.registry
        self.store = show.store
        self.folder = folder
        self._lock = threading.Lock()
        self.bindings: dict[Binding, str] = dict(bindings)
        self._learned: dict[str, str] = self._load_learned()
        self._msb: dict[tuple[int, int], int] = {}  # (channel, controller) -> the 14-bit high byte
        self._above: dict[Binding, bool] = {}  # a controller driving a trigger: was it at 64 or more
        self._pending: dict[str, Any] = {}
        self._triggers: list[tuple[str, Any]] = []
        self._job_queued = False
        self._learning = ""
        self._just_learned: tuple[Binding, str, float] | None = None
        self.counts = {"messages": 0, "accepted": 0, "coalesced": 0, "unmapped": 0, "rejected": 0, "learned": 0}
        self.port_name = ""
        self.port_error = ""
        self.store.subscribe(self._on_change)
        self.ports = PortWatcher(cfg.port, cfg.poll_s, self.feed, self._port_state)

    # ---- learned bindings, in the state folder -----------------------------------------------------
    def _load_learned(self) -> dict[str, str]:
        if self.folder is None:
            return {}
        from installation.core.state import read_json

        data = read_json(self.folder / MIDI_FILE) or {}
        learned: dict[str, str] = {}
        for key, name in data.items():
            try:
                b = parse_binding(str(key))
                p = check_target(str(name), self.registry)
            except ValueError as e:  # a parameter renamed since: the rest still loads
                log.warning("%s: ignored learned MIDI binding %s -> %s (%s)", self.folder / MIDI_FILE, key, name, e)
                continue
            self._bind(b, p.name)
            learned[b.key] = p.name
        return learned

    def _bind(self, b: Binding, name: str) -> None:
        """b drives name from now on; whatever else drove name, and whatever b drove, let go."""
        for other in [o for o, n in self.bindings.items() if n == name or o == b]:
            del self.bindings[other]
        self.bindings[b] = name

    def _save(self) -> None:
        if self.folder is None:
            log.info("MIDI binding learned, not saved (no state folder)")
            return
        import json

        from installation.core.files import atomic_write

        atomic_write(self.folder / MIDI_FILE, json.dumps(self._learned, indent=1, sort_keys=True) + "\n")

    # ---- any thread -----------------------------------------------------------------------------------
    def _on_change(self, p: Param, value: Any, source: str) -> None:
        if p.name != "midi/learn":
            return
        with self._lock:
            self._learning = str(value).strip().lstrip("/")

    def feed(self, msg: Any) -> None:
        """One mido message, on whichever thread received it. Only judges and hands over."""
        got = binding_of(msg)
        with self._lock:
            self.counts["messages"] += 1
            if got is None:
                return
            b, raw = got
            if b.kind == "cc" and b.number >= 32 and self._lsb_of_learned(b):
                pass  # the low byte of a fader just learned as 14-bit: it is that fader's value
            elif self._learning and (b.kind != "note" or raw > 0):
                self._learn(b)
            value = self._judge(b, raw)
            if value is None:
                return
            name, v, trigger = value
            if trigger:
                self._triggers.append((name, v))
            else:
                if name in self._pending:
                    self.counts["coalesced"] += 1
                self._pending[name] = v
            self.counts["accepted"] += 1
            queue_job, self._job_queued = not self._job_queued, True
        if queue_job:
            self.show.post(self._apply)

    def _lsb_of_learned(self, b: Binding) -> bool:
        j = self._just_learned
        if j is None or time.monotonic() - j[2] > LSB_PAIR_S:
            return False
        first, name = j[0], j[1]
        if first.kind != "cc" or first.channel != b.channel or first.number + 32 != b.number:
            return False
        wide = Binding("cc14", b.channel, first.number)
        self._bind(wide, name)
        self._learned.pop(first.key, None)
        self._learned[wide.key] = name
        self._just_learned = None
        self.show.post(lambda show: self._save())
        log.info("MIDI learn: %s -> %s (14-bit)", wide.key, name)
        return True

    def _learn(self, b: Binding) -> None:
        name = self._learning
        try:
            p = check_target(name, self.registry)
        except ValueError as e:
            self.counts["rejected"] += 1
            log.warning("MIDI learn %r refused: expected %s", name, e)
        else:
            self._bind(b, p.name)
            for k in [k for k, n in self._learned.items() if n == p.name or k == b.key]:
                del self._learned[k]
            self._learned[b.key] = p.name
            self._just_learned = (b, p.name, time.monotonic())
            self.counts["learned"] += 1
            log.info("MIDI learn: %s -> %s", b.key, p.name)
        self._learning = ""

        def done(show: Any) -> None:
            show.store.set("midi/learn", "", source="midi")
            self._save()

        self.show.post(done)

    def _judge(self, b: Binding, raw: int) -> tuple[str, Any, bool] | None:
        """(parameter, value, is a trigger) for a control's raw value, or None. Under the lock."""
        if b.kind == "cc" and b.number < 64:
            # kept for every controller that may be a high byte: a fader learned as 14-bit on its low byte
            # needs the high byte that came just before
            if b.number < 32:
                self._msb[(b.channel, b.number)] = raw
            wide_hi, wide_lo = Binding("cc14", b.channel, b.number), Binding("cc14", b.channel, b.number - 32)
            if b.number < 32 and wide_hi in self.bindings:
                b, raw = wide_hi, raw << 7  # the coarse value until the low byte comes
            elif b.number >= 32 and wide_lo in self.bindings:
                b, raw = wide_lo, (self._msb.get((b.channel, b.number - 32), 0) << 7) | raw
        name = self.bindings.get(b)
        if name is None:
            self.counts["unmapped"] += 1
            return None
        p = self.registry[name]
        if p.kind == "trigger":
            if b.kind == "note":
                return (name, 1, True) if raw > 0 else None
            up, was = raw * 2 > b.full_scale, self._above.get(b, False)
            self._above[b] = up
            return (name, 1, True) if up and not was else None
        if b.kind == "note":
            if raw == 0:
                return None  # note off: a toggle stays, a number keeps the velocity it was given
            if p.kind == "bool":
                was = bool(self._pending.get(name, self.store.target(name)))
                return name, not was, False
        try:
            return name, p.coerce(scale(p, raw, b.full_scale)), False
        except ParamError as e:  # the registry's rule, as for OSC; counted, never raised at a controller
            self.counts["rejected"] += 1
            log.warning("MIDI %s -> %s: %s", b.key, name, e)
            return None

    def _port_state(self, name: str, error: str) -> None:
        with self._lock:
            self.port_name, self.port_error = name, error

    # ---- the main thread -----------------------------------------------------------------------------
    def _apply(self, show: Any) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            triggers, self._triggers = self._triggers, []
            self._job_queued = False
        for name, v in [*pending.items(), *triggers]:
            self.store.set(name, v, source="midi")
        show.stats.count("midi_values", len(pending) + len(triggers))  # in the stats JSON, beside OSC's

    def update(self, show: Any) -> None:
        pass

    def hud(self, show: Any) -> list[str]:
        with self._lock:
            c, port, err, learning = dict(self.counts), self.port_name, self.port_error, self._learning
        head = f"midi {port or 'no port'}  in {c['accepted']}" + (f"  ! {err}" if err and not port else "")
        return [head] + ([f"midi learn: move a control for {learning}"] if learning else [])

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.counts) | {"port": self.port_name, "bindings": {b.key: n for b, n in
                                                                              self.bindings.items()}}

    def close(self) -> None:
        self.ports.close()


def attach_midi(show: Any, folder: Path | None) -> MidiControl | None:
    """A show with a [midi] table gets MIDI in as a surface (ShowHandle.add) with its HUD line."""
    cfg: MidiConfig | None = getattr(show.cfg, "midi", None)
    if cfg is None:
        return None
    control = MidiControl(show, cfg, check_midi(cfg, show.registry, show.cfg.path), folder)
    show.add(control, control.hud)
    return control


def check_lines() -> list[str]:
    """What `installation check` says about MIDI."""
    names, error = list_ports(probe=True)
    return [f"midi ports: {', '.join(names) if names else 'none (' + (error or 'no controller plugged in') + ')'}"]
