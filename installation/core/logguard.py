"""What a log file takes, whatever the network sends: lines cut to MAX_CHARS, each kind of line at most
PER_KIND a minute, and at most BYTES_PER_MIN bytes a minute in all.

A show's log rotates through a few files of a megabyte (core/state.py); a flood of hostile datagrams, each
refused with a line of its own, would rotate the history away in seconds (597 datagrams in 10 s did), and
one datagram can carry an address of 60,000 characters. The guard is a filter on the file handler: a line
over the limits is not written, only counted, and the next line that is written says how many were held
back, so the file keeps hours of history under attack and still tells that the attack happened."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

MAX_CHARS = 600  # of one message; a traceback (ours, not the network's) is kept whole
PER_KIND = 10  # lines of one kind (logger, level, message template) a minute
BYTES_PER_MIN = 32 * 1024  # a 4 MB rotation then holds two hours of the worst minute
MAX_KINDS = 512  # kinds tracked in one minute; more share one budget


class LogGuard(logging.Filter):
    """A handler's filter (handler.addFilter): cuts, rate-limits per kind and bounds bytes per minute."""

    def __init__(self, max_chars: int = MAX_CHARS, per_kind: int = PER_KIND, bytes_per_min: int = BYTES_PER_MIN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.max_chars, self.per_kind, self.bytes_per_min = max_chars, per_kind, bytes_per_min
        self.clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._kinds: dict[tuple[str, int, str], int] = {}
        self._bytes = 0
        self._held: dict[tuple[str, int, str], int] = {}  # kind -> lines held back, told with its next line
        self._held_total = 0  # all lines held back since a line said so
        self.held_back = 0  # lines never written, since the start

    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        kind = (record.name, record.levelno, template[:200])
        text = record.getMessage()
        if len(text) > self.max_chars:
            text = f"{text[:self.max_chars]}... ({len(text) - self.max_chars} characters cut)"
        with self._lock:
            minute = int(self.clock() // 60)
            if minute != self._minute:
                self._minute, self._kinds, self._bytes = minute, {}, 0
            if kind not in self._kinds and len(self._kinds) >= MAX_KINDS:
                kind = ("(other)", 0, "")
            n = self._kinds.get(kind, 0) + 1
            self._kinds[kind] = n
            if n > self.per_kind or self._bytes + len(text) > self.bytes_per_min:
                self._held[kind] = self._held.get(kind, 0) + 1
                self._held_total += 1
                self.held_back += 1
                if len(self._held) > MAX_KINDS:
                    self._held.clear()  # the totals still tell
                return False
            self._bytes += len(text) + 60  # the time, level and name around it
            same = self._held.pop(kind, 0)
            total, self._held_total = self._held_total, 0
        if same or total:
            text += f" (+{same} like it not logged" + (f", {total} lines held back in all)" if total > same else ")")
        record.msg, record.args = text, None
        return True
