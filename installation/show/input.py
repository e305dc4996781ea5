"""What the room and the operator touch on the show itself: its own triggers (`seg/relearn`, `show/grab`),
the keys of a window or a kiosk (the modifier rules are show/keys.py's, which the show file's checker and
the control surfaces' key help share), and the grab of the last shown frame to the state folder. The
show hands it what it uses; the show then tells its parts and control surfaces what happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from installation.core.params import ParamStore
from installation.core.timing import Stats
from installation.show.keys import key_acts, wants_quit
from installation.show.workers import Result, Workers

if TYPE_CHECKING:
    from installation.show.config import ShowConfig
    from installation.show.options import RunOptions

log = logging.getLogger("installation.show")


class Input:
    """Keys, the show's own triggers and the grab."""

    def __init__(self, cfg: ShowConfig, opts: RunOptions, store: ParamStore, stats: Stats, workers: Workers, *,
                 last: Callable[[], Result | None], stop: Callable[[], None]) -> None:
        """`last`: the newest result presented (what a grab saves); `stop`: ends the show (Ctrl+Q)."""
        self.cfg, self.opts = cfg, opts  # read by show/keys.py: the kiosk modifier, venue, fullscreen
        self.store, self.stats, self.workers = store, stats, workers
        self.last, self.stop = last, stop
        self.display: Any = None  # the window, once open: F toggles its fullscreen

    def on_trigger(self, name: str, value: Any = None) -> None:
        """The show's own triggers; the show's parts and surfaces hear every trigger after this."""
        if name == "seg/relearn" and self.workers.segmenter is not None:
            self.workers.segmenter.relearn()
        elif name == "show/grab":
            self.grab()

    def grab(self) -> None:
        """Save the last shown frame's layers in the state folder, off the main thread."""
        from installation.core.state import state_dir
        from installation.render.grab import save_grab

        last = self.last()
        folder = state_dir(self.cfg.name, self.opts.state)
        if last is None or folder is None:
            self.stats.fault("grab", "nothing to grab yet" if last is None else "the state folder is switched off")
            return
        stats = self.stats

        def work() -> None:
            try:
                files = save_grab(folder / "grabs", last.frame.index, last.layers)
                stats.count("grabs")
                log.info("grabbed %d pictures into %s", len(files), folder / "grabs")
            except OSError as e:
                stats.fault("grab", str(e))

        threading.Thread(target=work, name="grab", daemon=True).start()

    def on_key(self, symbol: int, modifiers: int) -> bool:
        """A key in the window. False when it may do nothing (kiosk: a visitor's key press); the show's
        parts and surfaces hear it otherwise. Quitting needs Ctrl: a visitor must not end the show."""
        from pyglet.window import key

        if not key_acts(self, symbol, modifiers):
            return False
        toggles = {key.H: "hud/show", key.B: "show/blackout", key.SPACE: "show/freeze", key.M: "display/monitor"}
        if symbol == key.G:
            self.store.set("show/grab", 1, source="key")
        elif symbol in toggles:
            name = toggles[symbol]
            self.store.set(name, not self.store.target(name), source="key")
        elif wants_quit(self, symbol, modifiers):
            self.stop()
        elif symbol == key.F and hasattr(self.display, "set_fullscreen"):
            self.display.set_fullscreen(not self.display.window.fullscreen)
        return True
