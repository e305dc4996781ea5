"""The show handle (show/handle.py): what a control surface reaches of a real, built show, and that what it
adds is called with the handle, never with the Show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import make_model_folder, small_show

from installation.app import default_registry, load_show
from installation.core.frames import Frame
from installation.show.handle import ShowHandle
from installation.show.loop import RunOptions, Show
from installation.show.schedule import ScheduleControl


class Surface:
    """A control surface as control/ writes them: update / on_trigger / on_key / close, given the handle."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.closed = False

    def update(self, handle: Any) -> None:
        self.seen.append(("update", handle))

    def on_trigger(self, handle: Any, name: str, value: Any) -> None:
        self.seen.append((f"trigger {name} {value}", handle))

    def on_key(self, handle: Any, symbol: int, modifiers: int) -> None:
        self.seen.append((f"key {symbol}", handle))

    def close(self) -> None:
        self.closed = True


class CountingGate:
    """A wrapper put between the source and the workers through the handle: counts the frames taken."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.frames = 0

    def recv(self, timeout: float | None = None) -> Frame | None:
        frame = self.source.recv(timeout)
        self.frames += frame is not None
        return frame

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


class HandledShow(Show):
    """A bare show whose one control surface is attached through the handle, as app.Show attaches them."""

    surface: Surface
    gate: CountingGate

    def attach_surfaces(self) -> None:
        self.surface = Surface()
        self.handle.add(self.surface, hud=lambda h: [f"surface sees {h.cfg.name}"])
        self.gate = self.handle.gate_source(CountingGate)


def built(tmp_path: Path, **opts: Any) -> HandledShow:
    model = make_model_folder(tmp_path / "models" / "m", size=32, name="m")
    cfg = load_show(small_show(tmp_path, name="handled", model=model))
    show = HandledShow(cfg, RunOptions(headless=True, realtime=False, **opts), default_registry())
    return show.build()  # type: ignore[return-value]


def test_what_a_surface_adds_is_called_with_the_handle_never_the_show(tmp_path: Path) -> None:
    show = built(tmp_path, frames=6)
    handle = show.handle
    show.on_trigger("show/grab", None)  # a trigger fired (nothing shown yet: counted as a grab fault)
    show.update()
    assert show.surface.seen and all(arg is handle for _, arg in show.surface.seen)
    assert ("trigger show/grab None", handle) in show.surface.seen
    assert "surface sees handled" in show.hud_text()
    assert handle.find(Surface) is show.surface
    assert isinstance(handle.find(ScheduleControl), ScheduleControl)  # the show's own part, found too
    summary = show.run()
    assert show.surface.closed
    assert summary["frames_presented"] == 6
    assert show.gate.frames >= 6 and show.source is show.gate, "the workers took their frames through the gate"


def test_post_runs_on_the_main_thread_at_the_next_update_with_the_handle(tmp_path: Path) -> None:
    import threading

    show = built(tmp_path)
    try:
        seen: list[tuple[Any, str]] = []
        def job(h: Any) -> None:
            seen.append((h, threading.current_thread().name))

        t = threading.Thread(target=lambda: show.handle.post(job))
        t.start()
        t.join()
        assert seen == []
        show.update()
        assert seen == [(show.handle, threading.current_thread().name)]
    finally:
        show.close()


def test_the_handle_reads_the_show_and_its_figures(tmp_path: Path) -> None:
    show = built(tmp_path)
    handle = show.handle
    try:
        assert handle.cfg is show.cfg and handle.opts is show.opts and handle.registry is show.registry
        assert handle.store is show.store and handle.has_source and handle.source_fps == show.source.fps
        before = show.stats
        assert handle.stats is before
        assert show.fresh_stats() is handle.stats and handle.stats is not before, "the bench's window: new stats"
        old = handle.snapshot["hud/show"]
        handle.store.set("hud/show", not old, source="test")
        assert handle.snapshot["hud/show"] == old, "the frame's values stay until they are published"
        handle.publish()
        assert handle.snapshot["hud/show"] == (not old)
        figures = handle.counters()
        assert figures["model"] == "m" and figures["frames_presented"] == 0 and "governor" in figures
        assert set(figures) == set(show.counters())
        assert handle.model_dirs()[0] == (tmp_path / "models").resolve()
        taps: list[Any] = []
        handle.tap_outputs(lambda outputs: taps.append(outputs) or "tapped")
        assert taps == [None] and show.outputs == "tapped"  # no [[output]]: the tap wraps nothing
        show.outputs = None
    finally:
        show.close()


def test_the_handle_holds_the_show_and_nothing_else(tmp_path: Path) -> None:
    assert ShowHandle.__slots__ == ("_show",)
    show = built(tmp_path)
    try:
        for name in ("slot", "workers", "input", "renderer", "display", "inbox", "parts", "surfaces", "results"):
            assert not hasattr(show.handle, name), name
    finally:
        show.close()
