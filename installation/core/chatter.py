"""Third-party chatter kept out of our commands' output. MediaPipe's TensorFlow Lite, glog/absl and ALSA
write to the process's stderr from C++, below Python's logging: `quiet_native_stderr` points file
descriptor 2 at a temporary file around a call, then writes back every line that is not known chatter
(a real error still shows). OpenCV's own warnings (a camera it can't open, tried by several backends)
are turned down with `quiet_opencv`; our code says the one line that matters instead."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

# Lines that say nothing to whoever runs the show: informational TFLite/glog/absl lines, the absl
# "before InitGoogle" notice, ALSA's complaint that there is no sequencer (the MIDI line says it in words).
CHATTER = re.compile(
    r"^(INFO: Created TensorFlow Lite"
    r"|WARNING: Logging before InitGoogle\(\)"
    r"|[IW]\d{4} [\d:. ]+\d+ [\w.]+:\d+\]"
    r"|ALSA lib )")

# ONNX Runtime's calibrator prints its progress with print(): lines that say nothing to whoever runs quantize.
ORT_CALIBRATION = re.compile(r"^(Collecting tensor data and making histogram|Finding optimal threshold for each "
                             r"tensor|Number of tensors :|Number of histogram bins :|Percentile :)")

_lock = threading.Lock()  # fd 2 is one per process: one capture at a time


def is_chatter(line: str) -> bool:
    return bool(CHATTER.match(line))


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[list[str]]:
    """Run the block with fd 2 captured; yields the list the dropped chatter lines are put in (after the
    block). Lines that are not chatter go back to stderr, in order."""
    dropped: list[str] = []
    with _lock:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a daemon's closed stderr): nothing to capture
            yield dropped
            return
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            sys.stderr.flush()
            os.dup2(tmp.fileno(), 2)
            try:
                yield dropped
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                text = tmp.read().decode("utf-8", "replace")
                kept = []
                for line in text.splitlines(keepends=True):
                    if is_chatter(line):
                        dropped.append(line.rstrip("\n"))
                    else:
                        kept.append(line)
                if kept:
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()


def quiet_opencv() -> None:
    """OpenCV logs errors only: its warnings (a camera index tried by each backend) are said by us, once."""
    import cv2

    with contextlib.suppress(AttributeError):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@contextlib.contextmanager
def quiet_prints(drop: re.Pattern[str]) -> Iterator[None]:
    """Python-level prints of a library call: lines matching `drop` dropped, the others printed after it."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        kept = [line for line in buffer.getvalue().splitlines(keepends=True) if not drop.match(line)]
        if kept:
            sys.stdout.write("".join(kept))
            sys.stdout.flush()
