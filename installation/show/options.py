"""How a show is run (the command's flags), apart from what the show file says: `RunOptions`, and the part
of it that speaks to the control surfaces, `ControlOptions`.

ControlOptions lives here rather than in the control wing because RunOptions carries it and the show wing
sits below control (the layers in pyproject.toml), as the show file's [osc] and [web] schema does in
show/config.py. The control wing fills it from the flags (control/options.py) and reads it
(control/surfaces.py, control/osc/wire.OscSettings.resolve); the show itself never looks inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ControlOptions:
    """The command line's say over the control surfaces; None or empty: as the show file's [osc] and
    [web] say."""

    osc: bool = True  # False (--no-osc): no OSC in or out, and so no OSCQuery and no panel
    osc_host: str | None = None  # the address OSC, OSCQuery and the panel listen on
    osc_port: int | None = None  # 0: any free port
    osc_feedback: tuple[str, ...] = ()  # "HOST:PORT" targets, added to the show's
    osc_allow: tuple[str, ...] = ()  # who may send, instead of the show's [osc] allow
    oscquery_port: int | None = None  # 0: off
    web_port: int | None = None  # the panel and status page; 0: off
    osc_record: Path | bool | None = None  # True: a new file in the state folder's recordings/
    osc_replay: Path | None = None  # an OSC recording played back (live values are then not restored)
    fresh: bool = False  # ignore the live values saved in the state folder, for this run


@dataclass
class RunOptions:
    headless: bool = True
    frames: int | None = None  # stop after this many presented frames
    seconds: float | None = None
    record: Path | None = None
    stats: Path | None = None
    lockstep: bool = False
    realtime: bool = True  # pace video and synthetic sources to their frame rate
    video: Path | None = None  # rehearse: play this instead of the show's source
    fullscreen: bool | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)
    # read by the show and its surfaces alike
    state: Path | None = None  # the state folder (presets, live values, recordings, logs, heartbeat)
    venue: bool = False  # `installation run`: kiosk keys in fullscreen, OSC writes off unless the show allows them
    control: ControlOptions = field(default_factory=ControlOptions)  # OSC, OSCQuery, the panel, live values
