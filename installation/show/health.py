"""Keeping a show alive for weeks: its health counters, the heartbeat file a supervisor watches, a
periodic health line in the log, and the `[health]` settings (the model retry they set is the model
slot's, inference/slot.py).

`counters(...)` is the one place the health figures are gathered: the stats JSON, the periodic log
line, the heartbeat file, OSC /status and the web's status page all read it (through Show.counters()),
so they always agree. The Health part reads only what `Watched` names of its show.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil
from pydantic import BaseModel, ConfigDict, Field

from installation.core.files import atomic_write, rotating_log_handler
from installation.core.timing import Stats, percentiles

if TYPE_CHECKING:
    from installation.inference.slot import ModelSlot
    from installation.show.governor import Governor
    from installation.show.workers import Workers

log = logging.getLogger("installation.health")

HEARTBEAT_ENV = "INSTALLATION_HEARTBEAT"  # the supervisor tells its child where to beat
LOG_NAME = "installation.log"
LATENCY_FRAMES = 120  # the live latency figures: over this many frames

_process = psutil.Process()


def rss_mb() -> float:
    """Resident memory of this process, MiB."""
    return _process.memory_info().rss / 2**20


def process_age_s() -> float:
    """Seconds since this process started, to 10 ms (psutil's create_time leans on a boot time rounded
    to the second, too coarse to time a restart)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return float(Path("/proc/uptime").read_text().split()[0]) - start
    except (OSError, ValueError, IndexError):
        return time.time() - _process.create_time()


def counters(stats: Stats, workers: Workers, slot: ModelSlot, governor: Governor) -> dict[str, Any]:
    """A show's health now, from its parts. Safe to call from any thread: it only reads."""
    st = stats
    src = workers.source
    c = st.counters
    faults = dict(st.faults)  # one copy: another thread may add a kind meanwhile
    lat = percentiles(list(st.latency_ms.copy())[-LATENCY_FRAMES:])  # deque.copy(): one step, no lock needed
    return {
        "pid": os.getpid(),
        "t": round(time.time(), 3),
        "uptime_s": round(time.monotonic() - st.t_start, 1),
        "fps": round(st.fps(), 2),
        # the last frames' camera-to-screen latency (the stats JSON's latency_ms covers the whole run)
        "latency_ms": {k: (v if math.isfinite(v) else None) for k, v in lat.items()},
        "frames_presented": c["frames_presented"],  # fresh pictures from the source
        "frames_held": c["frames_held"],  # re-presented while no fresh picture came (source down)
        "frames_inferred": c["frames_inferred"],
        "frames_reused": c["frames_reused"],
        "dropped": workers.dropped(),
        "reconnects": getattr(src, "reconnects", 0),
        "source_connected": bool(getattr(src, "connected", False)),
        "source_errors": getattr(src, "errors", 0),
        "errors": sum(faults.values()),
        "faults": faults,
        "last_fault": st.last_fault,
        "model": slot.model.name if slot.model is not None else None,
        "model_error": slot.error or None,
        "model_retries": c["model_retries"],
        "segment_failures": getattr(workers.segmenter, "failures", 0),
        "rss_mb": round(rss_mb(), 1),
        "governor": governor.status(),  # what the frame-budget governor gave up, and why
    }


class HealthConfig(BaseModel):
    """[health] in a show file."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_s: float = Field(5.0, gt=0, le=3600)  # how often the heartbeat file is written
    log_every_s: float = Field(300.0, ge=0)  # a counters line in the log this often; 0: never
    model_retry_s: float = Field(10.0, gt=0)  # first retry of a missing or failed model; then doubling...
    model_retry_max_s: float = Field(300.0, gt=0)  # ...up to this
    model_fail_after: int = Field(3, ge=1, le=1000)  # run-time failures in a row before the model is dropped


# ---- logs ---------------------------------------------------------------------------------------

def start_file_log(directory: Path, name: str = LOG_NAME, max_mb: float = 10.0,
                   backups: int = 5) -> logging.handlers.RotatingFileHandler:
    """Send the `installation` log to a rotating file in `directory` as well as the console.

    Rotation bounds the disk a weeks-long process uses; calling it again for the same file adds nothing.
    (The show's own log file is installation.state.add_log_file's; this one serves the supervisor.)
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = (directory / name).resolve()
    logger = logging.getLogger("installation")
    for h in logger.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and Path(h.baseFilename) == path:
            return h
    handler = rotating_log_handler(path, max_bytes=int(max_mb * 2**20), backups=backups)
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Readers (the supervisor) never see half a file. No fsync: a heartbeat lost to a power cut is stale
    anyway, and a flash card is spared a sync every beat."""
    atomic_write(path, json.dumps(data, default=str) + "\n", sync=False)


# ---- the part --------------------------------------------------------------------------------------

class Watched(Protocol):
    """What the Health part reads of the show it is a part of (show.loop.Show is one)."""

    @property
    def stats(self) -> Stats: ...

    def counters(self) -> dict[str, Any]: ...


class Health:
    """A part of the show (update(show) each frame on the main thread): heartbeat and periodic log.

    The heartbeat is written from the main loop, so a hung loop means a stale heartbeat: that is what
    the supervisor watches. It is also written at once on the first picture, which marks "up again".
    """

    def __init__(self, heartbeat: Path | None = None, heartbeat_s: float = 5.0, log_every_s: float = 300.0,
                 name: str = "") -> None:
        self.name = name  # the show's, in the heartbeat file
        self.heartbeat = heartbeat
        self.heartbeat_s = heartbeat_s
        self.log_every_s = log_every_s
        self._t_beat = 0.0
        self._t_log = time.monotonic()
        self._first_frame_s: float | None = None
        self._show: Watched | None = None
        self.beats = 0

    @classmethod
    def for_show(cls, name: str, settings: HealthConfig | None, state: Path | None) -> Health:
        """The show `name`'s health part: its heartbeat where the supervisor says, else in its state
        folder (`state`: the --state option, None for the default)."""
        h = settings or HealthConfig()
        path = os.environ.get(HEARTBEAT_ENV)
        if path:
            heartbeat: Path | None = Path(path)
        else:
            from installation.core.state import state_dir

            d = state_dir(name, state)
            heartbeat = d / "heartbeat.json" if d else None
        return cls(heartbeat, h.heartbeat_s, h.log_every_s, name=name)

    def update(self, show: Watched) -> None:
        now = time.monotonic()
        shown = show.stats.counters["frames_presented"] + show.stats.counters["frames_held"]
        first = self._first_frame_s is None and shown > 0
        if first:
            self._first_frame_s = round(process_age_s(), 3)
        # no beat before the first picture: a heartbeat means "presenting", which the supervisor times
        if self.heartbeat is not None and shown > 0 and (first or now - self._t_beat >= self.heartbeat_s):
            self._t_beat = now
            self.beat(show)
        self._show = show
        if self.log_every_s > 0 and now - self._t_log >= self.log_every_s:
            self._t_log = now
            self.log_line(show)

    def log_line(self, show: Watched) -> None:
        c = show.counters()
        log.info("health: %.1f fps, %d presented, %d held, %d dropped, %d reconnects, %d errors, "
                 "model %s, %.0f MiB", c["fps"], c["frames_presented"], c["frames_held"], c["dropped"],
                 c["reconnects"], c["errors"], c["model"] or "none", c["rss_mb"])

    def beat(self, show: Watched) -> None:
        assert self.heartbeat is not None
        data = show.counters() | {"show": self.name, "first_frame_s": self._first_frame_s}
        try:
            self.heartbeat.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.heartbeat, data)
            self.beats += 1
        except OSError as e:  # a full disk must not stop the pictures
            show.stats.fault("health", f"can't write heartbeat {self.heartbeat}: {e}")

    def close(self) -> None:
        if self._show is not None and self.log_every_s > 0:
            self.log_line(self._show)  # the last word before a stop or a restart
