"""What the room and the operator touch on the show itself: triggers (/show/grab, model select), the
keys of a window or a kiosk, the grab to the state folder, the HUD's text, and what control surfaces may
change on it (a gate before the source, values laid over the snapshot). A mixin of
show.loop.Show: the state is the Show's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("installation.show")


class Surface:
    """Triggers, keys, grab, HUD text; the source gate and laid-over looks (show.loop.Show's)."""

    def on_trigger(self, name: str, value: Any = None) -> None:
        """A fired trigger with its argument (/preset/recall 3): the show's own here, then every control
        with on_trigger(show, name, value) sees it and handles those it owns."""
        if name == "seg/relearn" and self.segmenter is not None:
            self.segmenter.relearn()
        elif name == "show/grab":
            self.grab()
        self.tell_parts("on_trigger", name, value)

    def grab(self) -> None:
        """Save the last shown frame's layers in the state folder, off the main thread."""
        from installation.core.state import state_dir
        from installation.render.grab import save_grab

        last = self._last
        folder = state_dir(self.cfg.name, self.opts.state)
        if last is None or folder is None:
            self.stats.fault("grab", "nothing to grab yet" if last is None else "the state folder is switched off")
            return

        def work() -> None:
            try:
                files = save_grab(folder / "grabs", last.frame.index, last.layers)
                self.stats.count("grabs")
                log.info("grabbed %d pictures into %s", len(files), folder / "grabs")
            except OSError as e:
                self.stats.fault("grab", str(e))

        threading.Thread(target=work, name="grab", daemon=True).start()

    def on_key(self, symbol: int, modifiers: int) -> None:
        """Keys in the window. Quitting needs Ctrl: a visitor pressing a key must not end the show."""
        from pyglet.window import key

        from installation.show.keys import key_acts, wants_quit

        if not key_acts(self, symbol, modifiers):
            return  # kiosk: a visitor's key press does nothing
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
        self.tell_parts("on_key", symbol, modifiers)

    def tell_parts(self, method: str, *args: Any) -> None:
        """Call `method` on the show's own parts (with the show) and its control surfaces (with the narrow
        handle, show/handle.py), where they have it. A part that fails is counted; the others still hear."""
        for parts, arg in ((self.controls, self), (self.surfaces, self.handle)):
            for c in list(parts):
                handler = getattr(c, method, None)
                if handler is None:
                    continue
                try:
                    handler(arg, *args)
                except Exception as e:
                    self.stats.fault("control", f"{type(e).__name__}: {e}")

    def hud_text(self) -> list[str]:
        st = self.stats
        src = self.source
        lines = [f"{self.cfg.name}  {st.fps():5.1f} fps  latency p50 {st.latency_p50():5.1f} ms",
                 f"frames {st.counters['frames_presented']}  dropped {self.dropped()}  "
                 f"faults {sum(st.faults.values())}"]
        slot = self.slot
        if slot.model is not None:
            m = slot.model
            lines.append(f"model {m.name} {m.card.size[1]}x{m.card.size[0]} "
                         f"via {m.backend.providers[0].replace('ExecutionProvider', '')} {m.precision_said}")
        if slot.state in ("loading", "fading"):
            lines.append(f"model {slot.state} {slot.loading_name}")
        if slot.error:
            lines.append("! " + slot.error)
        if src is not None:  # what the camera really delivers, and how often it had to be reopened
            shape = self._last.frame.image.shape if self._last is not None else None
            size = f"{shape[1]}x{shape[0]}" if shape is not None else "no frame yet"
            lines.append(f"source {src.name} {size}  reconnects {getattr(src, 'reconnects', 0)}")
        if src is not None and not src.connected:
            lines.append(f"! source {src.name}: {src.last_error or 'connecting'}")
        for err in (self.renderer.shaders.errors.values() if self.renderer else ()):
            lines.append("! " + err.splitlines()[0])
            why = next((ln.strip() for ln in err.splitlines() if "error" in ln.lower()), "")
            if why:  # the compiler's first complaint: what to fix, and on which line
                lines.append("!   " + why)
        if self.governor.active or self.governor.settings.given_up():
            lines.extend(self.governor.hud_lines())  # what it gave up to keep the rate, and why
        if st.last_fault:
            lines.append("! last fault: " + st.last_fault)
        for extra in self.hud_lines:
            lines.extend(extra(self))
        return lines

    # ---- what control surfaces may change on the show -------------------------------------------
    def gate_source(self, wrap: Callable[[Any], Any]) -> Any:
        """Put a wrapper between the source and the workers (OSC record / replay counts and gates frames);
        before the workers start. Returns the wrapper, which is now the show's source."""
        self.source = wrap(self.source)
        return self.source

    def lay_over(self, owner: str, values: dict[str, Any]) -> None:
        """Values laid over each snapshot by `owner` (a look), or none when `values` is empty; the store
        keeps the operator's own values underneath."""
        if values:
            self.overrides[owner] = values
        else:
            self.overrides.pop(owner, None)
