"""Recording takes for a dataset: a countdown, then N seconds of camera frames to take_NNN.mp4, repeated.

Time is the source's own clock (a frame's source_pts): wall time for a camera, media time for a
video file. So a file stands in for the camera in rehearsals and tests, and a test runs as fast as
the file decodes. `installation dataset build DIR` then turns the takes into pairs.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.frames import EndOfStream, Frame

if TYPE_CHECKING:
    from installation.media.sources import Reconnecting

log = logging.getLogger("installation.record")


@dataclass
class Take:
    path: Path
    frames: int = 0
    seconds: float = 0.0


@dataclass
class TakeRecorder:
    """The countdown/record state machine, fed one frame at a time; `done` once every take is written."""

    out: Path
    takes: int = 3
    seconds: float = 10.0
    countdown: float = 3.0
    fps: float = 30.0
    first: int = 1  # the number of the first take (a folder's takes go on from its last one)
    clocked: bool = False  # the countdown runs on count_down()'s clock, not on the frames'
    written: list[Take] = field(default_factory=list)
    phase: str = "countdown"  # or "armed" (counted down by the clock: the next frame starts), "recording", "done"
    _t0: float | None = None
    _writer: cv2.VideoWriter | None = None

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def count_down(self, now: float) -> str:
        """The countdown on a clock of the caller's (wall time, for a file that must not be read meanwhile):
        the digit to show, or "" once it is over and the next frame fed starts the take."""
        if self.phase != "countdown":
            return ""
        if self._t0 is None:
            self._t0 = now
        left = self.countdown - (now - self._t0)
        if left > 0:
            return str(int(np.ceil(left)))
        self.phase, self._t0 = "armed", None
        return ""

    def feed(self, frame: Frame) -> str:
        """Take one RGB frame; returns what to show over it ("3", "2", "1", "REC 4.2s", or "")."""
        t = frame.source_pts
        if self.done:
            return ""
        if self._t0 is None:
            self._t0 = t
        if self.phase == "armed":
            self._start(frame, t)
        if self.phase == "countdown":
            left = self.countdown - (t - self._t0)
            if left > 0:
                return str(int(np.ceil(left)))
            self._start(frame, t)
        elapsed = t - self._t0
        if elapsed >= self.seconds:
            self._finish()
            if len(self.written) >= self.takes:
                self.phase = "done"
                return ""
            self.phase, self._t0 = "countdown", (None if self.clocked else t)
            if self.clocked:
                return ""
            return str(int(np.ceil(self.countdown))) if self.countdown > 0 else self.feed(frame)
        assert self._writer is not None
        self._writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        take = self.written[-1]
        take.frames += 1
        take.seconds = elapsed
        return f"REC {elapsed:.1f}s"

    def _start(self, frame: Frame, t: float) -> None:
        h, w = frame.image.shape[:2]
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / take_name(self.first + len(self.written))
        if path.exists():  # someone else wrote it meanwhile: never overwrite a take
            raise UserError("a take of this name appeared while recording", file=path,
                            expected="one `dataset record` at a time into a folder")
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        if not writer.isOpened():
            raise UserError("cannot write a video here", file=path, expected="a writable folder (mp4v codec)")
        self._writer, self._t0, self.phase = writer, t, "recording"
        self.written.append(Take(path))
        log.info("recording %s", path)

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def close(self) -> None:
        """Stop where we are; a take cut short is kept (the frames in it are good)."""
        self._finish()
        if self.written and self.written[-1].frames == 0:
            self.written.pop().path.unlink(missing_ok=True)


TAKE = re.compile(r"^take_(\d+)\.mp4$")


def take_name(n: int) -> str:
    return f"take_{n:03d}.mp4"


def next_take(folder: Path) -> int:
    """The number after the folder's last take_NNN.mp4 (1 for a new or empty folder): takes go on."""
    numbers = [int(m.group(1)) for f in folder.iterdir() if (m := TAKE.match(f.name))] if folder.is_dir() else []
    return max(numbers, default=0) + 1


def overlay(rgb: np.ndarray, text: str) -> np.ndarray:
    """The preview picture: big countdown digits, or a red dot and the time while recording."""
    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    if text.startswith("REC"):
        cv2.circle(img, (30, 30), 12, (0, 0, 255), -1)
        cv2.putText(img, text[4:], (50, 40), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 255), 2)
    elif text:
        scale = h / 120
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 8)
        cv2.putText(img, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 8)
    return img


class FaultOnce:
    """The source's faults for `record`: the first said once (OpenCV's own warnings are turned down),
    repeats counted, the last kept for the error that ends a recording without frames."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""

    def __call__(self, kind: str, message: str) -> None:
        if self.count == 0:
            log.warning("%s: %s (retrying)", kind, message)
        self.count += 1
        self.last = message


def open_recording_source(camera: str, on_fault: FaultOnce | None = None) -> Reconnecting:
    """A camera index or device path, or a video file standing in for the camera (every frame, in order,
    read only when asked: the countdown does not use up the file)."""
    from installation.media.sources import camera_exists, list_cameras, open_source, video_source

    p = Path(camera)
    if p.is_file():
        return video_source(p, loop=False, realtime=False, lockstep=True).start()
    device: int | str = int(camera) if camera.isdigit() else camera
    if camera_exists(device) is False:
        here = ", ".join(list_cameras()) or "none found"
        raise UserError(f"no camera at {camera} (cameras here: {here})", key="--camera",
                        expected="a camera index or /dev/v4l/by-id/ path, or a video file standing in for it")
    return open_source("camera", camera=device, on_fault=on_fault)


def record(camera: str, out: str | Path, takes: int = 3, seconds: float = 10.0, countdown: float = 3.0,
           preview: bool = False, timeout: float = 5.0) -> list[Take]:
    """Record `takes` takes of `seconds` each after a countdown, numbered on from the folder's last take;
    returns what was written."""
    from installation.core.chatter import quiet_opencv
    from installation.core.progress import progress

    if takes < 1 or seconds <= 0 or countdown < 0:
        raise UserError(f"takes={takes}, seconds={seconds}, countdown={countdown}", key="options",
                        expected="--takes >= 1, --seconds > 0, --countdown >= 0")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("this is a file, not a folder", file=out, expected="a folder for the takes")
    first = next_take(out)
    if first > 1:
        print(f"record: {out} already holds takes up to {take_name(first - 1)}: going on from {take_name(first)}",
              flush=True)
    quiet_opencv()
    faults = FaultOnce()
    src = open_recording_source(camera, faults)
    clocked = Path(camera).is_file()  # a file waits during the countdown; a camera runs on
    rec = TakeRecorder(out, takes, seconds, countdown, fps=src.fps or 30.0, first=first, clocked=clocked)
    bar = progress(total=takes, unit="take", desc="record")
    waited = 0.0
    shown: np.ndarray | None = None
    pending: Frame | None = None
    try:
        while not rec.done:
            if rec.clocked and rec.phase == "countdown":
                text = rec.count_down(time.monotonic())
                if text and preview and shown is not None:
                    cv2.imshow("installation record", overlay(shown, text))
                    cv2.waitKey(50)
                elif text:
                    time.sleep(0.05)
                continue
            try:
                frame, pending = pending or src.recv(timeout=0.5), None
            except EndOfStream:
                log.warning("the source ended after %d of %d takes", len(rec.written), takes)
                break
            if frame is None:
                waited += 0.5
                if waited >= timeout:
                    why = f" ({faults.last})" if faults.last else ""
                    raise UserError(f"no frame for {timeout:.0f} s{why}", key="--camera",
                                    expected="a working camera (see `installation check`) or a video file")
                continue
            waited = 0.0
            shown = frame.image
            before = rec.phase
            text = rec.feed(frame)
            if rec.clocked and before == "recording" and rec.phase == "countdown":
                pending = frame  # the frame that ended a take opens the next one: a file loses nothing
            finished = len(rec.written) - (rec.phase == "recording")
            if finished > bar.n:
                bar.update(finished - bar.n)
            if preview:
                cv2.imshow("installation record", overlay(frame.image, text))
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
            if text.startswith("REC"):
                bar.set_postfix(take=len(rec.written), t=text[4:])
    finally:
        rec.close()
        src.close()
        if len(rec.written) > bar.n:
            bar.update(len(rec.written) - bar.n)
        bar.close()
        if preview:
            cv2.destroyAllWindows()
    return rec.written
