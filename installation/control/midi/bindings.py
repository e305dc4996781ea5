"""`[midi]` in a show file: the section's schema and its bindings ("cc CH N", "cc14 CH N", "note CH N",
"pb CH"), checked against the registry when the show loads (`check_section`, which app.load_show hands to
show/config.load_show). The MIDI input itself is control/midi/control.py."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from installation.core.errors import UserError
from installation.core.params import Param, Registry
from installation.show.config_errors import explain


class MidiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: str = "any"  # a port's name, a part of it (any case), or "any": the first port that is not a Through
    poll_s: float = Field(2.0, gt=0, le=60)  # how often the port list is looked at (plugged in, unplugged)
    map: dict[str, str] = Field(default_factory=dict)  # "cc 1 7" = "mix/amount"


class MidiSection(BaseModel):
    """The show file's view of the section, so a mistake's key path reads `midi.KEY` as the rest do."""
    model_config = ConfigDict(extra="allow")
    midi: MidiConfig | None = None


def check_section(raw: Any, registry: Registry, file: Path) -> MidiConfig:
    """The [midi] table of a show file: its schema, then its bindings against the registry."""
    try:
        cfg = MidiSection.model_validate({"midi": raw}).midi
    except ValidationError as e:
        raise explain(e, file, MidiSection) from None
    assert cfg is not None
    check_midi(cfg, registry, file)
    return cfg


@dataclass(frozen=True)
class Binding:
    kind: str  # cc, cc14, note, pb
    channel: int  # 1..16
    number: int = 0  # controller or note; 0 for pb

    @property
    def key(self) -> str:
        return f"pb {self.channel}" if self.kind == "pb" else f"{self.kind} {self.channel} {self.number}"

    @property
    def full_scale(self) -> int:
        return 16383 if self.kind in ("cc14", "pb") else 127


_KEY = re.compile(r"^\s*(cc14|cc|note|pb)\s+(\d+)(?:\s+(\d+))?\s*$", re.IGNORECASE)


def parse_binding(key: str) -> Binding:
    """'cc 1 7' and friends. Raises ValueError saying what was expected."""
    m = _KEY.match(key)
    if not m:
        raise ValueError("'cc CH N', 'cc14 CH N', 'note CH N' or 'pb CH'")
    kind, ch, num = m.group(1).lower(), int(m.group(2)), m.group(3)
    if not 1 <= ch <= 16:
        raise ValueError(f"a MIDI channel 1..16, got {ch}")
    if kind == "pb":
        if num is not None:
            raise ValueError("'pb CH' (the pitch bend wheel has no number)")
        return Binding(kind, ch)
    if num is None:
        raise ValueError(f"'{kind} CH N' (a {'note' if kind == 'note' else 'controller'} number)")
    n, top = int(num), 31 if kind == "cc14" else 127
    if not 0 <= n <= top:
        what = "note" if kind == "note" else "controller"
        raise ValueError(f"a {what} number 0..{top}{' (its low byte is N+32)' if kind == 'cc14' else ''}, got {n}")
    return Binding(kind, ch, n)


def check_target(name: str, registry: Registry) -> Param:
    """The parameter a binding drives. Raises ValueError saying what was expected."""
    if name not in registry:
        raise ValueError("a registered parameter (list them with `installation osc-map`)")
    p = registry[name]
    if p.kind == "str":
        raise ValueError("a number, bool, choice or trigger parameter (text can't come from a fader)")
    return p


def check_midi(cfg: MidiConfig, registry: Registry, file: Path | None) -> dict[Binding, str]:
    """A show's [midi.map], checked against the registry: every mistake is a UserError with its key."""
    out: dict[Binding, str] = {}
    for key, name in cfg.map.items():
        where = f'midi.map."{key}"'
        try:
            b = parse_binding(key)
        except ValueError as e:
            raise UserError(f"bad MIDI control {key!r}", file=file, key=where, expected=str(e)) from None
        try:
            p = check_target(name, registry)
        except ValueError as e:
            raise UserError(f"can't map {key!r} to {name!r}", file=file, key=where, expected=str(e)) from None
        if b in out:
            raise UserError(f"{b.key} is mapped twice", file=file, key=where, expected="one parameter a control")
        out[b] = p.name
    return out
