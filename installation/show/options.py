"""How a show is run (the command's flags), apart from what the show file says: `RunOptions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    # live control (installation/control/osc.py); None: as the show file says
    state: Path | None = None  # the state folder (presets, live values, recordings, logs)
    osc: bool = True
    osc_host: str | None = None
    osc_port: int | None = None  # 0: any free port
    osc_feedback: list[str] = field(default_factory=list)  # "HOST:PORT", added to the show's
    osc_allow: list[str] = field(default_factory=list)
    oscquery_port: int | None = None  # 0: off
    web_port: int | None = None  # the panel and status page; 0: off
    osc_record: Path | bool | None = None  # True: a new file in the state folder
    osc_replay: Path | None = None
    fresh: bool = False  # ignore the live values saved in the state folder, for this run
    venue: bool = False  # `installation run`: kiosk keys in fullscreen, OSC writes off unless the show allows them
