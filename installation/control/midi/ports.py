"""MIDI ports: which input a show's `[midi] port` means, and the thread that keeps it open.

The port list is looked at every few seconds: a controller plugged in after the start is opened, one that
vanished is closed and opened again when it returns. Where the machine has no ALSA sequencer, rtmidi is
not asked at every poll (ALSA prints its failure to stderr each time); `check` asks once and shows why.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any

from installation.core.chatter import quiet_native_stderr

log = logging.getLogger("installation.midi")


class PortWatcher:
    """Opens the MIDI input port a show asks for, on a thread that looks at the port list every poll_s."""

    def __init__(self, wanted: str, poll_s: float, callback: Any, on_state: Any) -> None:
        self.wanted = wanted
        self.poll_s = poll_s
        self.callback = callback
        self.on_state = on_state
        self.port: Any = None
        self.opened = 0
        self._logged = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="midi-ports", daemon=True)
        self._thread.start()

    def _say(self, error: str) -> None:
        self.on_state("", error)
        if error != self._logged:  # once per distinct state: a missing controller must not fill the log
            self._logged = error
            log.warning("MIDI: %s", error)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll()
            except Exception as e:  # a MIDI fault never ends the show; the next poll tries again
                self._close_port()
                self._say(f"{type(e).__name__}: {e}")
            self._stop.wait(self.poll_s)
        self._close_port()

    def _poll(self) -> None:
        names, error = list_ports()
        if self.port is not None:
            if self.port.name in names:
                return
            self._say(f"{self.port.name} vanished; waiting for it")
            self._close_port()
        name = pick_port(self.wanted, names)
        if name is None:
            self._say(error or f"no MIDI input matching {self.wanted!r} (ports: {', '.join(names) or 'none'})")
            return
        import mido

        self.port = mido.open_input(name, callback=self.callback)
        self.opened += 1
        self._logged = ""
        self.on_state(name, "")
        log.info("MIDI in from %s", name)

    def _close_port(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception as e:
                log.debug("closing MIDI port: %s", e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def list_ports(probe: bool = False) -> tuple[list[str], str]:
    """MIDI input port names, and why there are none where the machine has no MIDI. Without an ALSA
    sequencer device rtmidi is only asked when `probe` (check): ALSA prints its failure to stderr each time,
    and the port watcher asks every few seconds."""
    seq = Path("/dev/snd/seq")
    if not probe and sys.platform.startswith("linux") and not seq.exists():
        return [], "no ALSA sequencer here (no /dev/snd/seq)"
    try:
        import mido

        with quiet_native_stderr():  # ALSA's "cannot open /dev/snd/seq": said below in words, once
            return list(mido.get_input_names()), ""
    except ImportError as e:
        return [], f"mido is not installed ({e})"
    except Exception as e:  # rtmidi's SystemError where there is no /dev/snd/seq
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not seq.exists():
            why += " (no /dev/snd/seq: no ALSA sequencer on this machine)"
        return [], why


def pick_port(wanted: str, names: list[str]) -> str | None:
    """The port a show's `[midi] port` names: exact, then a part of a name in any case; "any": the first
    real one (ALSA's 'Midi Through' echoes what other programs send and is no controller)."""
    w = wanted.strip().lower()
    if w == "any":
        real = [n for n in names if "through" not in n.lower()]
        return real[0] if real else None
    for n in names:
        if n == wanted:
            return n
    for n in names:
        if w in n.lower():
            return n
    return None
