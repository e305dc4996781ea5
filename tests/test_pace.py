"""The trainer's pace line: seconds a picture from the last epoch, the finish from the last three."""

from __future__ import annotations

import datetime as dt

from installation.training.pace import Pace


def test_pace_says_seconds_a_picture_and_when_it_ends() -> None:
    pace = Pace(epochs=10, pictures=200)
    pace.add(100.0)
    now = dt.datetime(2026, 12, 6, 7, 0)
    assert pace.line(1, now) == ("0.50 s a picture (200 pictures, 2 min an epoch); 9 epoch(s) left: about 15 min, "
                                 "done near 07:15")
    for seconds in (400.0, 40.0, 40.0, 40.0):  # a slow start-up epoch leaves the estimate after three more
        pace.add(seconds)
    assert pace.left(5) == 5 * 40.0
    assert pace.line(10, now) == "0.20 s a picture (200 pictures, 40 s an epoch)"  # done: no finish to foretell
