"""The latency test's detection, through a real render -> read-back loop (HeadlessDisplay) standing in
for a camera that faces the screen with a known lag."""

from __future__ import annotations

import numpy as np
import pytest

from installation.core.errors import UserError
from installation.ops.latency_test import FlashDetector, ReadbackSource, brightness, run_latency_test
from installation.render.displays import HeadlessDisplay


def test_every_flash_comes_back_through_the_readback_loop_no_sooner_than_its_delay():
    display = HeadlessDisplay((96, 54))
    source = ReadbackSource(display, delay_s=0.03)
    try:
        r = run_latency_test(display, source, flashes=4, period_s=0.25, settle_s=0.3)
    finally:
        source.close()
        display.close()
    assert r["black_level"] < 5 and r["white_level"] > 250
    assert r["detected"] == 4 and r["missed"] == 0
    # the picture showing a change is read after it was presented and handed over 30 ms later:
    # a latency under the delay would mean a stale frame was taken for the flash
    assert min(r["latencies_ms"]) >= 30.0


def test_detector_pairs_each_change_with_the_first_frame_that_shows_it():
    d = FlashDetector(black=20, white=180)
    assert d.feed(200, 1.0) is None  # not armed: nothing to time
    d.arm("white", 10.0)
    assert d.feed(200, 9.99) is None  # arrived before the flip: can't show it
    assert d.feed(30, 10.02) is None  # still black
    assert d.feed(150, 10.05) == pytest.approx(50.0)  # past the midpoint (100)
    assert d.feed(200, 10.06) is None  # counted once
    d.arm("black", 11.0)
    d.arm("white", 12.0)  # the black never came back
    assert d.missed == 1
    assert d.latencies_ms == [pytest.approx(50.0)]


def test_a_camera_that_cannot_see_the_screen_is_refused():
    with pytest.raises(UserError, match="too little"):
        FlashDetector(black=100, white=110)


def test_brightness_reads_the_centre():
    img = np.zeros((100, 100, 3), np.uint8)
    img[25:75, 25:75] = 255
    assert brightness(img) == pytest.approx(255, abs=1)
    assert brightness(img, roi=1.0) == pytest.approx(255 / 4, abs=2)
