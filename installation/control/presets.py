"""Presets: numbered snapshots of the look, saved and recalled live (OSC, keys), recalled with a morph.

A preset holds the parameters that make the look (persist=True), not the room's calibration: the
display group (corner pin, rotation, gamma, fit) and the HUD stay as they are when a preset is recalled,
so a preset made in the studio can be recalled on site. Recall glides float values over preset/morph_s
(ParamStore ramps); ints, bools and choices switch at once, at the start of the morph.

Slots are numbered 1..99, because a trigger fires on non-zero and its release (TouchOSC buttons send
1, then 0) must never recall slot 0. Triggers with an argument flow like any trigger: the OSC input
checks the argument, the store queues (name, raw value), Show.update() drains it and hands it to
on_trigger(show, name, value) here, on the main thread.

Each preset is one JSON file, state/presets/preset-NN.json, written atomically. Without a state folder
presets live in memory until the show stops.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from installation.core.files import atomic_write
from installation.core.params import Param, ParamError, ParamStore
from installation.core.state import apply_values, read_json
from installation.show.config import SLOTS

log = logging.getLogger("installation.presets")

# Triggers that carry an argument, and its range: the OSC input rejects anything else, the docs and the
# controller layouts say it.
ARG_TRIGGERS: dict[str, tuple[int, int]] = {"preset/save": SLOTS, "preset/recall": SLOTS}
NOT_IN_PRESETS = ("display", "hud", "preset")
# Not kept between runs (persist=False: a show starts on its own model), but part of a look: a preset
# that names a model crossfades to it.
PRESET_EXTRAS = ("model/select",)
# pyglet.window.key.LEFT and RIGHT (pyglet uses X11 keysyms on every platform). Not imported: importing
# pyglet.window connects to a display, which a headless show doesn't have.
KEY_LEFT, KEY_RIGHT = 0xFF51, 0xFF53

PARAMS: list[Param] = [
    Param("preset/save", "trigger", description="save the current look as preset N (1..99)", persist=False),
    Param("preset/recall", "trigger", description="recall preset N (1..99), gliding over preset/morph_s",
          persist=False),
    Param("preset/next", "trigger", description="recall the next saved preset (wraps around)", persist=False),
    Param("preset/prev", "trigger", description="recall the previous saved preset (wraps around)", persist=False),
    Param("preset/morph_s", "float", 1.0, 0, 60, unit="s",
          description="how long a recall glides float values (0: cut); others switch at once"),
]


def in_preset(p: Param) -> bool:
    return (p.persist or p.name in PRESET_EXTRAS) and p.kind != "trigger" and p.group not in NOT_IN_PRESETS


def slot_of(name: str, raw: Any) -> int:
    """A trigger's argument as a slot number. Raises ParamError for anything but a whole number in range."""
    lo, hi = ARG_TRIGGERS.get(name, SLOTS)
    if isinstance(raw, (list, tuple)):
        if len(raw) != 1:
            raise ParamError(f"/{name} takes one slot number, got {len(raw)} values")
        raw = raw[0]
    if isinstance(raw, bool) or raw is None:
        raise ParamError(f"/{name} needs a slot number {lo}..{hi}, got {raw!r}")
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise ParamError(f"/{name} needs a slot number {lo}..{hi}, got {raw!r}") from None
    if not math.isfinite(x) or x != int(x) or not lo <= x <= hi:
        raise ParamError(f"/{name} needs a slot number {lo}..{hi}, got {raw!r}")
    return int(x)


class PresetBank:
    """The presets of one show. A control: its methods run on the main thread only (Show.update, keys)."""

    def __init__(self, folder: Path | None, store: ParamStore, show_name: str = "",
                 on_recall: Callable[[int], None] | None = None,
                 declared: dict[int, dict[str, Any]] | None = None) -> None:
        self.folder = folder
        self.declared = dict(declared or {})  # the show file's [presets.N]; a saved slot overrides one
        self.store = store
        self.show_name = show_name
        self.current = 0  # the slot last saved or recalled; 0: none yet
        self.last_message = ""
        self.on_recall = on_recall
        self._memory: dict[int, dict[str, Any]] = {}  # without a folder
        if folder is not None:
            self._check_folder()

    def _check_folder(self) -> None:
        assert self.folder is not None
        if self.folder.exists() and not self.folder.is_dir():
            log.warning("%s is not a folder: presets will last until the show stops", self.folder)
            self.folder = None

    def path(self, slot: int) -> Path:
        assert self.folder is not None
        return self.folder / f"preset-{slot:02d}.json"

    def slots(self) -> list[int]:
        if self.folder is None:
            return sorted(set(self._memory) | set(self.declared))
        out = list(self.declared)
        for p in self.folder.glob("preset-*.json"):
            stem = p.stem.removeprefix("preset-")
            if stem.isdigit() and SLOTS[0] <= int(stem) <= SLOTS[1]:
                out.append(int(stem))
        return sorted(set(out))

    # ---- save and recall --------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        reg = self.store.registry
        # model/select only once a model was chosen: "" would mean "no change" on recall anyway
        return {n: v for n, v in self.store.targets().items()
                if in_preset(reg[n]) and not (n in PRESET_EXTRAS and v == "")}

    def save(self, slot: int) -> None:
        values = self.values()
        if self.folder is None:
            self._memory[slot] = values
        else:
            doc = {"version": 1, "slot": slot, "show": self.show_name,
                   "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "values": values}
            atomic_write(self.path(slot), json.dumps(doc, indent=1, sort_keys=True) + "\n")
        self.current = slot
        self._say(f"saved preset {slot}")

    def load(self, slot: int) -> dict[str, Any] | None:
        if self.folder is None:
            return self._memory.get(slot, self.declared.get(slot))
        data = read_json(self.path(slot))
        if data is None:
            return self.declared.get(slot)
        values = data.get("values")
        return values if isinstance(values, dict) else None

    def recall(self, slot: int, morph_s: float | None = None) -> bool:
        values = self.load(slot)
        if values is None:
            self._say(f"preset {slot} is empty", warn=True)
            return False
        morph = float(self.store.target("preset/morph_s")) if morph_s is None else morph_s
        apply_values(self.store, values, "preset", keep=in_preset, ramp_s=morph, what=f"preset {slot}")
        self.current = slot
        self._say(f"recalled preset {slot}" + (f" over {morph:g} s" if morph > 0 else ""))
        if self.on_recall:
            self.on_recall(slot)
        return True

    def step(self, direction: int) -> bool:
        slots = self.slots()
        if not slots:
            self._say("no presets saved yet", warn=True)
            return False
        if direction > 0:
            later = [s for s in slots if s > self.current]
            slot = later[0] if later else slots[0]
        else:
            earlier = [s for s in slots if s < self.current]
            slot = earlier[-1] if earlier else slots[-1]
        return self.recall(slot)

    def _say(self, message: str, warn: bool = False) -> None:
        self.last_message = message
        (log.warning if warn else log.info)(message)

    # ---- control protocol -------------------------------------------------------------------------
    def on_trigger(self, show: Any, name: str, value: Any) -> None:
        if name == "preset/next":
            self.step(+1)
        elif name == "preset/prev":
            self.step(-1)
        elif name in ("preset/save", "preset/recall"):
            try:
                slot = slot_of(name, value)
            except ParamError as e:  # the OSC input checks this; other callers may not
                self._say(str(e), warn=True)
                return
            if name == "preset/save":
                self.save(slot)
            else:
                self.recall(slot)

    def on_key(self, show: Any, symbol: int, modifiers: int) -> None:
        if symbol == KEY_RIGHT:
            self.store.set("preset/next", 1, source="key")
        elif symbol == KEY_LEFT:
            self.store.set("preset/prev", 1, source="key")

    def hud(self, show: Any) -> list[str]:
        n = len(self.slots())
        if not n and not self.last_message:
            return []
        return [f"preset {self.current or '-'} ({n} saved)" + (f"  {self.last_message}" if self.last_message else "")]

    def update(self, show: Any) -> None:
        pass

    def close(self) -> None:
        pass
