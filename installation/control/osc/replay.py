"""Record the OSC a show accepted, and play it back in a rehearsal.

A recording is JSON lines, one per accepted message (after the allow-list and the checks; a value
superseded within the same frame by a newer one for the same address was never applied, so it is not
there either):

    {"t": 12.345, "frame": 371, "address": "/pre/blur", "args": [3.0]}

`t` is seconds since the show started, `frame` the index of the first source frame that could see the
message: one past the frame the inference thread had taken when the message was applied.

Playback (`--osc-replay FILE`):
  by time (default): a message is applied once `t` seconds have passed since the show started.
  --lockstep, by frame: before the source frame N is processed, every message with frame <= N is applied
    and a snapshot is published, and the inference thread waits for that snapshot. Time, for ramps and
    smoothing, is the frame clock N / fps. So a lockstep rehearsal of the same clip with the same
    recording sees the same values on every frame, however fast or slow the machine is.
Replayed messages go through the same checks as live ones and are mirrored to the feedback targets,
so controllers follow a rehearsal. A replay starts from the show file's values (no live values are
restored) and saves no live values, so it can be run again and again.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installation.core.errors import UserError

log = logging.getLogger("installation.replay")


@dataclass(frozen=True)
class Recorded:
    t: float
    frame: int
    address: str
    args: tuple[Any, ...]


def _json_arg(a: Any) -> Any:
    if isinstance(a, (bool, int, str)) or a is None:
        return a
    if isinstance(a, float):
        return a if math.isfinite(a) else None
    if isinstance(a, (bytes, bytearray)):
        return a.hex()
    if isinstance(a, (list, tuple)):
        return [_json_arg(x) for x in a]
    return str(a)


class OscRecorder:
    """Appends accepted messages to a JSON-lines file. Main thread only; flushed about once a second, so a
    crash loses at most a second of it and a flood costs no syscall per message."""

    def __init__(self, path: Path, t0: float | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole show
        self.t0 = time.monotonic() if t0 is None else t0
        self.count = 0
        self._t_flush = 0.0

    def write(self, frame: int, address: str, args: list[Any] | tuple[Any, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        line = {"t": round(now - self.t0, 4), "frame": frame, "address": address, "args": [_json_arg(a) for a in args]}
        self._f.write(json.dumps(line) + "\n")
        self.count += 1

    def update(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now - self._t_flush >= 1.0:
            self._f.flush()
            self._t_flush = now

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def read_recording(path: Path) -> list[Recorded]:
    """A recording's messages in order. A broken line is skipped with a warning (a recording cut short by
    a power cut still plays); a missing or empty file is a UserError."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"can't read the OSC recording: {e.strerror or e}", file=path) from None
    out: list[Recorded] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            t, frame, address, args = float(d["t"]), int(d["frame"]), d["address"], d.get("args", [])
            if not isinstance(address, str) or not isinstance(args, list) or not math.isfinite(t):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
            continue
        out.append(Recorded(t, frame, address, tuple(args)))
    if bad:
        log.warning("%s: skipped %d unreadable line(s)", path, bad)
    if not out:
        raise UserError("the OSC recording holds no messages", file=path,
                        expected='JSON lines like {"t": 1.5, "frame": 45, "address": "/pre/blur", "args": [3]}')
    return out


class OscReplay:
    """Plays a recording back through `apply(address, args)` on the main thread.

    By time: update() applies what is due. In lockstep: before_frame(N), called on the inference thread
    by a GatedSource, hands the due messages to the main thread and waits for the snapshot that holds
    them (see the module doc)."""

    def __init__(self, messages: list[Recorded], apply: Callable[[str, list[Any]], None], lockstep: bool,
                 fps: float = 30.0) -> None:
        self.messages = sorted(messages, key=(lambda m: (m.frame, m.t)) if lockstep else (lambda m: m.t))
        self.apply = apply
        self.lockstep = lockstep
        self.fps = fps if fps and fps > 0 else 30.0
        self.next = 0
        self.frame_clock = 0.0  # seconds, in lockstep: the frame being processed / fps
        self._t0: float | None = None
        self._closed = threading.Event()
        self.waits_timed_out = 0

    @property
    def done(self) -> bool:
        return self.next >= len(self.messages)

    def _apply_through(self, due: Callable[[Recorded], bool]) -> int:
        n = 0
        while self.next < len(self.messages) and due(self.messages[self.next]):
            m = self.messages[self.next]
            self.next += 1
            self.apply(m.address, list(m.args))
            n += 1
        return n

    def update(self, now: float | None = None) -> None:
        """By time, on the main thread."""
        if self.lockstep:
            return
        now = time.monotonic() if now is None else now
        if self._t0 is None:
            self._t0 = now
        elapsed = now - self._t0
        self._apply_through(lambda m: m.t <= elapsed)

    def before_frame(self, index: int, post: Callable[[Callable[[Any], None]], None], store: Any,
                     timeout: float = 2.0) -> None:
        """Lockstep, on the inference thread: make frame `index` see exactly the messages up to it."""
        applied = threading.Event()
        marker: list[Any] = []

        def job(show: Any) -> None:
            self.frame_clock = index / self.fps
            self._apply_through(lambda m: m.frame <= index)
            marker.append(store.snapshot())  # publish() follows this job in the same Show.update()
            applied.set()

        post(job)
        deadline = time.monotonic() + timeout
        while not applied.wait(0.05):
            if self._closed.is_set() or time.monotonic() > deadline:
                self.waits_timed_out += 1
                return
        while store.snapshot() is marker[0]:
            if self._closed.is_set() or time.monotonic() > deadline:
                self.waits_timed_out += 1
                return
            time.sleep(0.0005)

    def close(self) -> None:
        self._closed.set()


class GatedSource:
    """A source, unchanged, that calls on_frame(index) on the inference thread before handing each frame
    over: the hook that lets a recording know which frame a message reached, and a lockstep replay hold a
    frame until its messages are in the snapshot. Everything else is the wrapped source's."""

    def __init__(self, source: Any, on_frame: Callable[[int], None],
                 on_close: Callable[[], None] | None = None) -> None:
        self._source = source
        self._on_frame = on_frame
        self._on_close = on_close
        self.taken = -1  # index of the last frame handed to the inference thread

    def recv(self, timeout: float | None = None) -> Any:
        frame = self._source.recv(timeout=timeout)
        if frame is not None:
            self._on_frame(frame.index)
            self.taken = frame.index
        return frame

    def close(self) -> None:
        if self._on_close is not None:  # first: an inference thread waiting in on_frame must let go
            self._on_close()
        self._source.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)
