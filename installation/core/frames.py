"""What travels between the stages: the Frame, and the single slot that hands it over.

Latest frame wins: a slot holds one item; a producer that is faster than its consumer overwrites the
item nobody took yet, and the slot counts that as a drop. Nothing ever queues, so latency can't grow.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np


class EndOfStream(Exception):
    """Raised by a source's recv() when it will produce no more frames (aiortc's MediaStreamError)."""


class SlotClosed(Exception):
    """Raised by LatestSlot.get() once the slot is closed and empty."""


@dataclass(frozen=True)
class Frame:
    """One picture and where it came from.

    image: HxWx3 uint8 RGB on the CPU (or a GPU tensor on the GPU path).
    t_capture: time.monotonic() seconds when the source got it; carried unchanged to the screen.
    index: the source's running count, 0-based; video sources count across loops.
    source_pts: the position in the source's own timeline, seconds (video time, or equal to t_capture).
    mask: HxW float32 in [0, 1], the person, when a segmenter has run.
    """

    image: Any
    index: int
    t_capture: float
    source_pts: float = 0.0
    mask: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def with_image(self, image: Any, **changes: Any) -> Frame:
        """A transform's result: new picture, same timestamps (aiortc's transform contract)."""
        return replace(self, image=image, **changes)

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.t_capture


T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item handoff that overwrites.

    put() never blocks (unless lockstep), get() waits for an item newer than the last one taken.
    In lockstep mode put() waits until the previous item was taken, so every item is delivered in
    order: for repeatable rehearsals and recordings. Given an `order` (a capture time), put() also
    drops an item older than one already handed over: producers working side by side (several
    inference workers) can finish out of order, and the screen must never step back in time.
    """

    def __init__(self, name: str = "slot", lockstep: bool = False) -> None:
        self.name = name
        self.lockstep = lockstep
        self._cond = threading.Condition()
        self._item: T | None = None
        self._full = False
        self._closed = False
        self.puts = 0
        self.dropped = 0
        self.late = 0  # items dropped because a newer one was already put
        self._order = float("-inf")

    def put(self, item: T, timeout: float | None = None, order: float | None = None) -> bool:
        """Hand over an item. Returns False when the slot closed (or lockstep wait timed out)."""
        with self._cond:
            if self.lockstep:
                ok = self._cond.wait_for(lambda: not self._full or self._closed, timeout)
                if not ok:
                    return False
            if self._closed:
                return False
            if order is not None:
                if order < self._order:
                    self.late += 1
                    self.dropped += 1
                    return True
                self._order = order
            if self._full:
                self.dropped += 1
            self._item = item
            self._full = True
            self.puts += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to timeout for one; None on timeout; SlotClosed when done."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if not ok:
                return None
            if not self._full:
                raise SlotClosed(self.name)
            item = self._item
            self._item = None
            self._full = False
            self._cond.notify_all()
            return item

    def get_nowait(self) -> T | None:
        """The newest item if there is one, else None; never waits."""
        with self._cond:
            if not self._full:
                if self._closed:
                    raise SlotClosed(self.name)
                return None
            item = self._item
            self._item = None
            self._full = False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
