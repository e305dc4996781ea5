"""Logs under attack (core/logguard.py on every rotating log file): a long value is cut, a flood of one kind
of line is held back and said later, and the bytes a minute are bounded, so a flood can't rotate a show's
history away. Judged on real files written by the real handler."""

from __future__ import annotations

import logging
from pathlib import Path

from installation.core.files import rotating_log_handler
from installation.core.logguard import BYTES_PER_MIN, MAX_CHARS, PER_KIND, LogGuard


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0 * 60

    def __call__(self) -> float:
        return self.t


def _logger(tmp_path: Path, clock: Clock | None = None) -> tuple[logging.Logger, Path, logging.Handler]:
    path = tmp_path / "show.log"
    handler = rotating_log_handler(path, max_bytes=1_000_000, backups=3)
    if clock is not None:
        handler.filters = [LogGuard(clock=clock)]
    log = logging.getLogger(f"installation.test.{tmp_path.name}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log, path, handler


def test_a_long_value_is_cut(tmp_path: Path) -> None:
    log, path, handler = _logger(tmp_path)
    log.warning("OSC %s dropped", "/" + "x" * 60_000)
    handler.close()
    text = path.read_text()
    assert len(text) < MAX_CHARS + 200
    assert "characters cut" in text


def test_a_flood_of_one_kind_is_held_back_and_said_in_the_next_minute(tmp_path: Path) -> None:
    clock = Clock()
    log, path, handler = _logger(tmp_path, clock)
    for i in range(600):  # the 600 hostile datagrams in 10 s
        log.warning("OSC %s dropped: unknown address", f"/attack/{i}")
    log.info("a line of another kind")
    clock.t += 60
    log.warning("OSC %s dropped: unknown address", "/attack/again")
    handler.close()
    lines = path.read_text().splitlines()
    attack = [ln for ln in lines if "/attack/" in ln]
    assert len(attack) == PER_KIND + 1
    assert "a line of another kind" in "\n".join(lines), "other kinds still get through"
    assert f"(+{600 - PER_KIND} like it not logged)" in attack[-1]


def test_bytes_a_minute_are_bounded_whatever_the_kinds(tmp_path: Path) -> None:
    clock = Clock()
    log, path, handler = _logger(tmp_path, clock)
    for minute in range(3):
        for i in range(2000):  # every line a kind of its own: the per-kind limit doesn't hold them
            log.warning(f"kind {minute}-{i}: " + "y" * 400)
        clock.t += 60
    handler.close()
    size = path.stat().st_size
    assert size <= 3 * (BYTES_PER_MIN + 8 * 1024), size  # a line's time and name are counted roughly
    assert size > 2 * BYTES_PER_MIN // 2, "the log still takes lines every minute"
    assert "held back in all" in path.read_text()
