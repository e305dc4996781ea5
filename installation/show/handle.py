"""What a control surface may reach of a show: the narrow handle OSC, the web, MIDI, presets and live
state are given instead of the `Show` itself.

A surface reads the show file, the run options, the registry and the store; counts into the stats;
posts jobs that run on the main thread between frames (nannou's update); adds itself with its HUD
lines; finds the show's schedule; reads the health counters, the published snapshot and the source's
frame rate; puts a gate before the source (OSC record / replay); taps the output stage (the web's
thumbnail). The loop, the workers, the model slot, the renderer and the display are out of its reach:
`Show` passes this handle, never itself, to every surface's update, hud, on_trigger and on_key.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from installation.core.params import ParamStore, Registry, Snapshot
from installation.core.timing import Stats

if TYPE_CHECKING:
    from installation.inference.slot import ModelSlot
    from installation.show.config import ShowConfig
    from installation.show.options import RunOptions

T = TypeVar("T")


class Host(Protocol):
    """What the handle reaches of its show (show.loop.Show is the one host): named here so the handle
    needs no import of the loop."""

    cfg: ShowConfig
    opts: RunOptions
    registry: Registry
    store: ParamStore
    snapshot: Snapshot
    inbox: queue.SimpleQueue[Callable[[Any], None]]
    parts: list[Any]
    surfaces: list[Any]
    hud_lines: list[Callable[[Any], list[str]]]
    outputs: Any
    slot: ModelSlot

    @property
    def stats(self) -> Stats: ...

    @property
    def source(self) -> Any: ...

    def counters(self) -> dict[str, Any]: ...

    def gate_source(self, wrap: Callable[[Any], Any]) -> Any: ...


class ShowHandle:
    """A show as its control surfaces see it. Main-thread methods unless said otherwise."""

    __slots__ = ("_show",)

    def __init__(self, show: Host) -> None:
        self._show = show

    @property
    def cfg(self) -> ShowConfig:
        return self._show.cfg

    @property
    def opts(self) -> RunOptions:
        return self._show.opts

    @property
    def registry(self) -> Registry:
        return self._show.registry

    @property
    def store(self) -> ParamStore:
        return self._show.store

    @property
    def stats(self) -> Stats:  # a property: a bench swaps the show's stats at its measuring window
        return self._show.stats

    @property
    def snapshot(self) -> Snapshot:
        """The values the current frame works on (looks laid over the store's)."""
        return self._show.snapshot

    def post(self, job: Callable[[ShowHandle], None]) -> None:
        """Any thread: run `job(handle)` on the main thread at the start of the next update."""
        self._show.inbox.put(lambda _show: job(self))

    def add(self, surface: Any, hud: Callable[[ShowHandle], list[str]] | None = None) -> None:
        """A control surface: its update / on_trigger / on_key / close are called with this handle, its
        HUD lines shown with the show's."""
        self._show.surfaces.append(surface)
        if hud is not None:
            self.add_hud(hud)

    def add_hud(self, hud: Callable[[ShowHandle], list[str]]) -> None:
        """Lines of HUD text, asked for each time the HUD is drawn."""
        self._show.hud_lines.append(lambda _show: hud(self))

    def find(self, kind: type[T]) -> T | None:
        """The show's part or surface of this type (the web's status page shows the schedule's look)."""
        return next((c for c in [*self._show.parts, *self._show.surfaces] if isinstance(c, kind)), None)

    def counters(self) -> dict[str, Any]:
        """The health figures, the same as the stats JSON, the heartbeat and the log line."""
        return self._show.counters()

    def publish(self) -> None:
        """Publish the store's values now (surfaces restored live values before the first frame)."""
        self._show.snapshot = self._show.store.publish()

    @property
    def source_fps(self) -> float:
        return float(getattr(self._show.source, "fps", 0) or 0.0)

    @property
    def has_source(self) -> bool:
        return self._show.source is not None

    def gate_source(self, wrap: Callable[[Any], Any]) -> Any:
        """Put a wrapper between the source and the workers, before they start (Show.gate_source)."""
        return self._show.gate_source(wrap)

    def tap_outputs(self, wrap: Callable[[Any], Any]) -> None:
        """Wrap the output stage Show.view hands each presented picture to (it may be None: no outputs)."""
        self._show.outputs = wrap(self._show.outputs)

    def model_dirs(self) -> list[Path]:
        """Where /model/select looks a bare name up, in order."""
        return self._show.slot.model_dirs()
