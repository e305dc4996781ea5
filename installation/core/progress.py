"""Progress for long commands (dataset build and record, train, segment): a tqdm bar when stderr is a
terminal, and otherwise one plain line every `every_s` seconds and one at the end, so a log file gets a
few readable lines instead of thousands of carriage-return updates."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

PLAIN_EVERY_S = 30.0  # seconds between plain lines when no one watches a bar


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class PlainProgress:
    """tqdm's small interface (iterate, update, set_postfix, n, close) as plain lines: `desc: n/total unit
    (p %), elapsed, postfix`, at most one every `every_s` seconds, and one at close."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "",
                 unit: str = "it", every_s: float = PLAIN_EVERY_S, stream: TextIO | None = None,
                 disable: bool = False) -> None:
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every_s, self.stream, self.disable = every_s, stream, disable
        self.n = 0
        self.postfix = ""
        self._t0 = self._last = time.monotonic()
        self._closed = False
        self._said = -1  # n at the last line: nothing new, no line

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._line()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def _line(self) -> None:
        if self.disable or self.n == self._said:
            return
        self._said = self.n
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}{of} {self.unit}{pct}, {time.monotonic() - self._t0:.0f} s{extra}",
              file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._line()


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True, leave: bool = True, every_s: float = PLAIN_EVERY_S) -> Any:
    """A tqdm bar on a terminal; plain lines elsewhere; nothing when not `enabled`."""
    if enabled and on_terminal():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, every_s=every_s, disable=not enabled)
