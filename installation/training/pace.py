"""How fast a training run goes and when it will end: seconds per picture and an estimated finish, said
after every epoch (the first one included), from the epochs this process has timed."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Pace:
    """Wall time per epoch (training steps, validation, samples and checkpoint: what the run costs)."""

    epochs: int  # the run's total
    pictures: int  # training pictures an epoch (all processes together)
    recent: int = 3  # the estimate follows the last few epochs: a machine's load changes
    times: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.times.append(seconds)

    def per_picture(self) -> float:
        return self.times[-1] / max(1, self.pictures)

    def left(self, done: int) -> float:
        last = self.times[-self.recent:]
        return max(0, self.epochs - done) * sum(last) / len(last)

    def line(self, done: int, now: _dt.datetime | None = None) -> str:
        """"0.52 s a picture (77 pictures, 40 s an epoch); 8 epochs left: about 5 min, at 07:41"."""
        left = self.left(done)
        head = (f"{self.per_picture():.2f} s a picture ({self.pictures} pictures, "
                f"{_duration(self.times[-1])} an epoch)")
        if left <= 0:
            return head
        end = (now or _dt.datetime.now()) + _dt.timedelta(seconds=left)
        return f"{head}; {self.epochs - done} epoch(s) left: about {_duration(left)}, done near {end:%H:%M}"
