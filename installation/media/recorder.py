"""The video recorder: what was shown, written to an mp4 on its own thread, each picture filling the file
from when it was presented to when the next one was (one frame each under --lockstep)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from installation.core.errors import UserError

log = logging.getLogger("installation.render")


class Recorder:
    """Writes what was shown to an mp4 on its own thread.

    The file plays at a fixed rate, and each picture fills it from the time it was presented until the
    next one was: the video lasts as long as the show was watched, however few fresh pictures the model
    made (a picture held for 100 ms is three frames at 30 fps). Under --lockstep every picture is one
    frame instead, so a rehearsal's recording has each source frame exactly once; it blocks rather than
    drops. A picture of another size than the file (a resized window) is rejected and counted, since the
    writer would drop it without a word.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, lockstep: bool = False) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"can't write the recording: {e.strerror or e}", file=self.path) from None
        self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise UserError("can't write the recording", file=self.path, expected="a writable path ending in .mp4")
        self.lockstep = lockstep
        self.size = size
        self.fps = fps
        self.frames = 0  # frames in the file, repeats included
        self.pictures = 0  # pictures handed over by the show
        self.rejected = 0  # pictures not of the file's size
        self.dropped = 0  # pictures the writer thread had no room for (the previous one fills their time)
        self._t0: float | None = None
        self._held: np.ndarray | None = None  # the picture on screen, written until its successor's time
        self._q: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(maxsize=8)
        self._t_end = 0.0
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def _fill_until(self, t: float) -> None:
        """Repeat the held picture over the frames whose time comes before t."""
        if self._held is None or self._t0 is None:
            return
        due = round((t - self._t0) * self.fps)
        while self.frames < due:
            self.writer.write(self._held)
            self.frames += 1

    def _run(self) -> None:
        w, h = self.size
        while (item := self._q.get()) is not None:
            img, t = item
            if img.shape[:2] != (h, w):
                if not self.rejected:
                    log.warning("recording %s: rejected a %dx%d picture (the file is %dx%d); counting the rest",
                                self.path, img.shape[1], img.shape[0], w, h)
                self.rejected += 1
                continue
            bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            if self.lockstep:
                self.writer.write(bgr)
                self.frames += 1
                continue
            if self._t0 is None:
                self._t0 = t
            self._fill_until(t)
            self._held = bgr
        if self._held is not None:  # the last picture stays until the show ended, and is in the file once
            self._fill_until(max(self._t_end, (self._t0 or 0.0) + (self.frames + 1) / self.fps))

    def write(self, rgb: np.ndarray, t: float | None = None) -> None:
        """A picture presented at monotonic time t (now if None)."""
        self.pictures += 1
        item = (rgb, time.monotonic() if t is None else t)
        try:
            self._q.put(item, block=self.lockstep, timeout=5.0 if self.lockstep else None)
        except queue.Full:
            self.dropped += 1

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def close(self, t_end: float | None = None) -> None:
        """Finish the file; the last picture fills it up to t_end (when the show stopped; now if None)."""
        self._t_end = time.monotonic() if t_end is None else t_end
        self._q.put(None)
        self._thread.join()
        self.writer.release()
