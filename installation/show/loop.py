"""The live loop, in nannou's shape: build the model of the show once, `update` it once per frame (input
drained, triggers handled, one immutable parameter snapshot published), then `view` it (draw only).

Threads: the source reads frames into a latest-wins slot; an inference worker takes the newest,
preprocesses, segments and runs the model, and puts the result into another latest-wins slot; the main
thread owns GL and draws. A slow stage drops stale frames, it never queues them; --lockstep makes every
slot wait instead, so each source frame is processed in order (repeatable rehearsals and recordings).

On the CPU two workers (`[model] workers`) each carry a frame at once: the steps that remember the
last frame (temporal preprocessing, the still-room check) run under `_pre_lock` in the order frames were
taken, the output's temporal step under `_out_lock` in capture order, and only the model runs side by
side; a result that finishes after a newer one is dropped, so the screen never steps back.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.errors import UserError
from installation.core.frames import EndOfStream, Frame, LatestSlot, SlotClosed
from installation.core.params import ParamStore, Registry, Snapshot
from installation.core.paths import data_dir
from installation.core.timing import Stats
from installation.inference.models import (
    Model,
    find_model,
    load_for_rate,
    plan_workers,
    show_backend,
)
from installation.render import hud
from installation.render.renderer import Layers, Recorder, Renderer, finish
from installation.show.config import ShowConfig
from installation.show.health import counters as health_counters
from installation.vision.preprocess import Chain, ChainState
from installation.vision.stillness import StillnessGate

MODELS_DIR = data_dir("models")

log = logging.getLogger("installation.show")

_LATE = object()  # a frame finished after a newer one: dropped so the screen never steps back

HOLD_AFTER_S = 0.5  # headless: with no fresh frame for this long, present the last picture again...
HOLD_FPS = 5.0  # ...at this rate (counted as frames_held, apart from fresh frames_presented)

@dataclass
class RunOptions:
    headless: bool = True
    frames: int | None = None  # stop after this many presented frames
    seconds: float | None = None
    record: Path | None = None
    stats: Path | None = None
    lockstep: bool = False
    realtime: bool = True  # pace video and synthetic sources to their frame rate
    video: Path | None = None  # rehearse: play this instead of the show's source
    fullscreen: bool | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)
    # live control (installation/control/osc.py); None: as the show file says
    state: Path | None = None  # the state folder (presets, live values, recordings, logs)
    osc: bool = True
    osc_host: str | None = None
    osc_port: int | None = None  # 0: any free port
    osc_feedback: list[str] = field(default_factory=list)  # "HOST:PORT", added to the show's
    osc_allow: list[str] = field(default_factory=list)
    oscquery_port: int | None = None  # 0: off
    osc_record: Path | bool | None = None  # True: a new file in the state folder
    osc_replay: Path | None = None
    fresh: bool = False  # ignore the live values saved in the state folder, for this run
    venue: bool = False  # `installation run`: kiosk keys in fullscreen, OSC writes off unless the show allows them


@dataclass
class Result:
    """One processed frame, from the inference thread to the main thread."""

    frame: Frame
    layers: Layers
    fresh: bool = True  # False when the output was reused rather than inferred
    t_ready: float = 0.0


class Show:
    """A show being played: built once, updated and viewed each frame, closed once."""

    def __init__(self, cfg: ShowConfig, opts: RunOptions, registry: Registry) -> None:
        self.cfg = cfg
        self.opts = opts
        self.stats = Stats()
        self.registry = registry
        from installation.media.outputs import declare_outputs

        declare_outputs(self.registry, cfg.output, cfg.path)  # /output/NAME/on, before the store is made
        self.store = ParamStore(self.registry)
        self.inbox: queue.SimpleQueue[Callable[[Show], None]] = queue.SimpleQueue()
        self.hud_lines: list[Callable[[Show], list[str]]] = []  # extra HUD text from control surfaces
        self.controls: list[Any] = []  # objects with update(show) and close()
        self.model: Model | None = None
        self.model_error = ""
        self.chain: Chain | None = None
        self.stages: list[Model] = []  # chained models after the first, each fed the one before
        self.incoming: Model | None = None  # a model being crossfaded in
        self._swap_t0 = 0.0
        self._swap_name = ""
        self._swap_thread: threading.Thread | None = None
        self.segmenter: Any = None
        self.still = StillnessGate()  # skips inference while the room is still (stillness.py)
        self.source: Any = None
        self.display: Any = None
        self.renderer: Renderer | None = None
        self.recorder: Recorder | None = None
        self.outputs: Any = None  # outputs.OutputStage: NDI, virtual camera
        self.results: LatestSlot[Result] = LatestSlot("results", lockstep=opts.lockstep)
        self._stop = threading.Event()
        # inference threads started: the most frames in flight the show may use (the model in use says
        # how many it takes, Model.parallel); one with --lockstep, so a rehearsal repeats bit for bit
        self.workers = 1 if opts.lockstep else plan_workers(cfg.model.workers)
        self._infer_threads: list[threading.Thread] = []
        self._pre_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._t_out = float("-inf")  # capture time of the newest frame whose output was finished
        self._chain_state = ChainState()  # the workers' shared temporal memory
        self._incoming_state = ChainState()  # the incoming model's, during a crossfade
        self._prev_output: np.ndarray | None = None  # the newest output by capture time (set with _t_out)
        self._last: Result | None = None
        self._overlay: np.ndarray | None = None
        self._t_overlay = 0.0
        self._source_ended = False
        self.snapshot: Snapshot = self.store.snapshot()
        self.overrides: dict[str, dict[str, Any]] = {}  # values laid over each snapshot, by owner (looks)
        self.model_wanted: Path | None = None  # a model dropped after failing, to load again (health.py)
        self.backend: str | None = None  # [model] backend, None for "auto" (models.show_backend)
        self._model_failures = 0

    # ---- build -------------------------------------------------------------------------------
    def build(self) -> Show:
        cfg = self.cfg
        self.backend = show_backend(cfg.model.backend, cfg.path)  # first: a show that can't run fails at once
        self.source = self.open_source()  # first: its frame rate decides how the model is run...
        self.load_initial_model()
        self.source.start()  # ...and it starts once the model is ready, so no frame is skipped meanwhile
        values: dict[str, Any] = {}
        if self.chain is not None:
            values.update(self.chain.param_values())
        values.update(cfg.params)
        values.update(self.opts.extra_params)
        for name, v in values.items():
            self.store.set(name, v, source="config", ramp_s=0.0)
        self.snapshot = self.store.publish()
        from installation.vision.segment import SegmentWorker

        self.segmenter = SegmentWorker(on_fault=lambda kind, msg, e: self.stats.fault(kind, msg, exc=e))
        self.display = self.open_display()
        self.renderer = Renderer(self.display.ctx, cfg.render.content_size)
        self.display.on_key = self.on_key
        if self.opts.record:
            self.recorder = Recorder(self.opts.record, self.display.size, self.source.fps or 30.0,
                                     lockstep=self.opts.lockstep)
        from installation.media.outputs import attach_outputs

        attach_outputs(self)  # [[output]]: each on its own thread, fed from the frame's one readback
        from installation.show.health import attach

        attach(self)  # heartbeat, model retry, opening hours and attract look
        self.attach_controls()  # app.Show: live values restored, presets, OSC in/out, record/replay, MIDI
        self._infer_threads = [threading.Thread(target=self._infer_loop, args=(i,), name=f"inference-{i}",
                                                daemon=True) for i in range(self.workers)]
        for t in self._infer_threads:
            t.start()
        return self

    def attach_controls(self) -> None:
        """Control surfaces: none in a bare show. The composition root's Show (app.py) attaches them."""

    def open_model(self, path: str | Path) -> Model:
        """Load a model for this show: its providers, and as many frames in flight as the source's rate
        needs (models.load_for_rate); one for chained models and with --lockstep."""
        setting = 1 if (self.opts.lockstep or self.cfg.model.then) else self.cfg.model.workers
        return load_for_rate(path, self.cfg.model.providers, setting, self.source_rate(), backend=self.backend)

    def source_rate(self) -> float | None:
        """Frames a second the source delivers; None when it is read as fast as the loop can."""
        src = self.source
        if src is None or not getattr(src, "realtime", True):
            return None
        return float(getattr(src, "fps", 0.0)) or None

    @property
    def workers_in_use(self) -> int:
        return min(self.workers, self.model.parallel) if self.model is not None else 1

    def load_initial_model(self) -> None:
        """A missing or broken model is not fatal here: the camera picture shows, the HUD says why."""
        path = self.cfg.model.path
        if path is None:
            return
        try:
            self.model = self.open_model(path)
            self.chain = self.model.card.chain
            self.stages = [self.open_model(p) for p in self.cfg.model.then]
        except Exception as e:  # retried by health.ModelRetry while the camera picture shows
            self.model_error = e.render() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            self.stats.fault("model", self.model_error)

    def open_source(self) -> Any:
        """The show's source, not yet started (build() starts it once the model is loaded)."""
        from installation.media.sources import VideoSource, open_source

        src = self.cfg.source
        if src.kind == "ndi" and self.opts.video is None:
            from installation.media.ndi import NdiSource

            return NdiSource(src.name, src.width, src.height, src.fps, lockstep=self.opts.lockstep,
                             on_fault=self.stats.fault)
        if self.opts.video is not None:
            return VideoSource(self.opts.video, loop=True, realtime=self.opts.realtime,
                               lockstep=self.opts.lockstep, on_fault=self.stats.fault)
        return open_source(src.kind, lockstep=self.opts.lockstep, realtime=self.opts.realtime,
                           on_fault=self.stats.fault, start=False, **src.model_dump(exclude={"kind"}))

    def open_display(self) -> Any:
        from installation.render.renderer import HeadlessDisplay, WindowDisplay

        r = self.cfg.render
        if self.opts.headless:
            return HeadlessDisplay((r.width, r.height))
        fullscreen = r.fullscreen if self.opts.fullscreen is None else self.opts.fullscreen
        return WindowDisplay(fullscreen=fullscreen, screen=r.screen, size=(r.width, r.height), vsync=r.vsync)

    # ---- the inference thread -----------------------------------------------------------------
    def _infer_loop(self, worker: int = 0) -> None:
        while not self._stop.is_set():
            if worker and not self.side_by_side(worker):
                self._stop.wait(0.02)  # one frame at a time for now (GPU, chained models, a crossfade)
                continue
            try:
                frame = self.source.recv(timeout=0.25)
            except EndOfStream:
                self._source_ended = True
                self.results.close()
                return
            if frame is None:
                continue
            snap = self.store.snapshot()
            try:
                result = self.process(frame, snap, self._chain_state, self._prev_output)
            except Exception as e:  # a picture must stay up: count it, log it once, go on
                self.stats.fault("inference", f"{type(e).__name__}: {e}", exc=e)
                continue
            if result is None:
                continue  # finished after a newer frame: dropped
            if not self.results.put(result, timeout=None if self.opts.lockstep else 0,
                                    order=result.frame.t_capture):
                return

    def side_by_side(self, worker: int) -> bool:
        """May this (extra) worker take a frame now? Only for a model that runs concurrently, alone."""
        model = self.model
        return (model is not None and worker < model.parallel and self.incoming is None and not self.stages)

    def process(self, frame: Frame, snap: Snapshot, state: ChainState,
                prev_output: np.ndarray | None) -> Result | None:
        """One frame through segmentation, preprocessing and the model(s): pure work, no GL. None when
        another worker finished a newer frame first."""
        chain = self.chain or Chain.from_spec("plain", (self.cfg.render.content_size,) * 2)
        st = self.stats
        model = self.model
        # read once: the main thread may start or finish a swap while this frame is in flight
        incoming, incoming_state = self.incoming, self._incoming_state
        gpu = None
        output = model_input = output_b = None
        with self._pre_lock:  # steps that remember the last frame: in the order frames were taken
            mask = self.segment(frame, snap)
            image = frame.image

            def view() -> tuple[np.ndarray, np.ndarray | None]:  # made if a pass, a grab or a look reads it
                return chain.view(image, snap, mask)

            lazy = {"view": view, "has_mask": mask is not None}
            if model is not None and incoming is None and not self.stages:
                from installation.inference.gpu import gpu_path_for

                gpu = gpu_path_for(model)  # torch on CUDA: preprocess + infer on the GPU, output stays there
            if model is not None and gpu is None:
                with st.time("preprocess"):
                    model_input, _ = chain.apply_live(image, snap, state, mask, prev_output)
                if (prev_output is not None and incoming is None
                        and self.still.still(model_input, float(snap["model/skip_still"]), key=model)):
                    st.count("frames_still")
                    return Result(frame, Layers(output=prev_output, model_input=model_input, **lazy),
                                  fresh=False, t_ready=time.monotonic())
        if model is not None:
            infer: Callable[[], Any]
            finish: Callable[[Any], Any]
            if gpu is not None:  # a GPU model runs one frame at a time (Model.parallel 1): no lock needed
                def infer() -> Any:
                    return gpu.process(image, snap, state)

                def finish(y: Any) -> Any:
                    return y  # the GPU path did the output step on the device
            else:
                def infer() -> Any:
                    return self._infer_cpu(model, model_input, snap, state, mask, view)

                def finish(y: Any) -> Any:
                    return chain.apply_output(y, snap, state)
            output = self._run_model(model, frame, infer, finish, prev_output)
            if output is _LATE:
                return None
        if incoming is not None:
            output_b = self._infer_incoming(incoming, incoming_state, frame, snap, mask)
        return Result(frame, Layers(output=output, model_input=model_input, output_b=output_b, **lazy),
                      fresh=output is not None, t_ready=time.monotonic())

    def _infer_cpu(self, model: Model, x: np.ndarray, snap: Snapshot, state: ChainState,
                   mask: np.ndarray | None, view: Callable[[], tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        output = model.infer(x)
        stage_mask = view()[1] if self.stages and mask is not None else None  # aligned with output
        for i, stage in enumerate(self.stages):
            output = self._run_stage(stage, output, snap, state.of(1000 + i), stage_mask)
        return output

    def _run_model(self, model: Model, frame: Frame, infer: Callable[[], Any], finish: Callable[[Any], Any],
                   prev_output: np.ndarray | None) -> Any:
        """The one fault handling every inference path goes through (CPU, chained, GPU): a failure is
        counted and its traceback logged the first time, the last picture stays up, and a model that
        keeps failing is dropped for health.ModelRetry. _LATE when a newer frame finished first."""
        st = self.stats
        failure: Exception | None = None
        output = None
        try:
            with st.time("infer"):
                output = infer()
        except Exception as e:
            failure = e
        with self._out_lock:  # the output's temporal step, in capture order
            if failure is None:
                if frame.t_capture < self._t_out:
                    st.count("frames_late")
                    return _LATE
                try:
                    output = finish(output)
                except Exception as e:
                    failure = e
            if failure is not None:
                st.fault("model", f"{type(failure).__name__}: {failure}", exc=failure)
                return None if self.drop_failing_model(model, failure) else prev_output
            self._t_out = frame.t_capture
            if isinstance(output, np.ndarray):  # a GPU picture stays on the device, never fed back
                self._prev_output = output
            st.count("frames_inferred")
            self._model_failures = 0
            return output

    def _infer_incoming(self, incoming: Model, state: ChainState, frame: Frame, snap: Snapshot,
                        mask: np.ndarray | None) -> np.ndarray | None:
        """The incoming model's picture during a crossfade, through its own card's chain and its own
        temporal memory (the playing model's would mix two chains' steps)."""
        st = self.stats
        try:
            with st.time("infer_incoming"), self._pre_lock:
                values = {**snap, **incoming.card.chain.param_values()}
                x, _ = incoming.card.chain.apply_live(frame.image, values, state, mask)
                return incoming.infer(x)
        except Exception as e:
            st.fault("model", f"incoming {incoming.name}: {type(e).__name__}: {e}", exc=e)
            return None

    def drop_failing_model(self, model: Model, e: Exception) -> bool:
        """After a few failures in a row, stop using a model: the camera picture shows through the
        composite and health.ModelRetry loads it again later. True when it was dropped."""
        self._model_failures += 1
        if self._model_failures < self.cfg.health.model_fail_after or self.model is not model:
            return False
        self._model_failures = 0
        self.model, self.model_wanted = None, model.path
        self.model_error = f"model {model.name} failed ({type(e).__name__}: {e}); showing the camera, retrying"
        log.error("%s", self.model_error)
        return True

    def adopt_model(self, model: Model) -> None:
        """Take a model at once (a retried load): nothing to fade from. The show file's values for the
        model's preprocessing still win over the card's, as at build()."""
        self._incoming_state = ChainState()
        self.incoming = model
        self._finish_swap()
        mine = {**self.cfg.params, **self.opts.extra_params}
        for name in model.card.chain.param_values():
            if name in mine:
                self.store.set(name, mine[name], source="config", ramp_s=0.0)
        self.model_wanted = None

    @property
    def last_result(self) -> Result | None:
        """The newest result presented (read by controls such as the attract look's presence check)."""
        return self._last

    @staticmethod
    def _run_stage(stage: Model, picture: np.ndarray, snap: Snapshot, state: dict[str, Any],
                   mask: np.ndarray | None) -> np.ndarray:
        """A chained model: its own card's preprocessing (less the mirror: the picture is already
        oriented) on the previous model's picture."""
        chain = stage.card.chain.without("flip")
        sub = ChainState()
        sub.per_step = state.setdefault("chain", {})
        x, _ = chain.apply_live(picture, {**snap, **chain.param_values()}, sub, mask)
        return stage.infer(x)

    def segment(self, frame: Frame, snap: Snapshot) -> np.ndarray | None:
        """The person mask for this frame, from the segmentation thread (the newest one it has)."""
        worker = self.segmenter
        if worker is None or snap["seg/mode"] == "none":
            return None
        with self.stats.time("segment_submit"):
            worker.submit(frame.index, frame.image, snap)
            got = worker.wait_for(frame.index, 5.0) if self.opts.lockstep else worker.latest()
        if got is None:
            return None
        mask, _ = got
        (mh, mw), (h, w) = mask.shape[:2], frame.image.shape[:2]
        return mask if abs(mh / mw - h / w) < 0.02 else None  # a mask of an older, other-shaped source

    # ---- update: input, triggers, snapshot -----------------------------------------------------
    def update(self) -> Snapshot:
        if self.display is not None:
            self.display.poll()
            if self.display.should_close:
                self.stop()
        while True:
            try:
                job = self.inbox.get_nowait()
            except queue.Empty:
                break
            try:
                job(self)
            except Exception as e:
                self.stats.fault("control", f"{type(e).__name__}: {e}")
        for c in self.controls:
            try:
                c.update(self)
            except Exception as e:
                self.stats.fault("control", f"{type(e).__name__}: {e}")
        for name, value in self.store.drain_triggers():
            self.on_trigger(name, value)
        self.update_model_swap()
        snap = self.store.publish()
        if self.overrides:  # a look lays its values over the live ones; the store keeps the operator's
            laid = {k: v for values in self.overrides.values() for k, v in values.items() if k in snap}
            snap = Snapshot({**snap, **laid}, snap.version, snap.t)
        self.snapshot = snap
        return self.snapshot

    def on_trigger(self, name: str, value: Any = None) -> None:
        """A fired trigger with its argument (/preset/recall 3): the show's own here, then every control
        with on_trigger(show, name, value) sees it and handles those it owns."""
        if name == "seg/relearn" and self.segmenter is not None:
            self.segmenter.relearn()
        elif name == "show/grab":
            self.grab()
        for c in self.controls:
            handler = getattr(c, "on_trigger", None)
            if handler is not None:
                try:
                    handler(self, name, value)
                except Exception as e:
                    self.stats.fault("control", f"{type(e).__name__}: {e}")

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

    # ---- model swap: load in the background, crossfade in the shader ------------------------------
    def update_model_swap(self) -> None:
        wanted = self.store.target("model/select")
        if wanted and wanted != self._swap_name and self._swap_thread is None:
            self._swap_name = wanted
            self._swap_thread = threading.Thread(target=self._load_incoming, args=(wanted,), name="model-load",
                                                 daemon=True)
            self._swap_thread.start()
        if self._swap_thread is not None and not self._swap_thread.is_alive():
            self._swap_thread = None
        if self.incoming is not None and self.crossfade() >= 1.0:
            self._finish_swap()

    def model_dirs(self) -> list[Path]:
        """Where a model's bare name is looked up, first match wins: the show's models folder (the one
        holding its configured model, else models/ beside the show file), then the installed models."""
        dirs = []
        if self.cfg.model.path is not None:
            dirs.append(Path(self.cfg.model.path).parent)
        if self.cfg.path is not None:
            dirs.append(Path(self.cfg.path).parent / "models")
        dirs.append(MODELS_DIR)
        return list(dict.fromkeys(d.resolve() for d in dirs))

    def _load_incoming(self, name: str) -> None:
        base = Path(self.cfg.path).parent if self.cfg.path is not None else Path.cwd()
        try:
            model = self.open_model(find_model(name, base, self.model_dirs()))
        except Exception as e:  # a failed swap keeps the model that was running
            msg = e.render() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            self.stats.fault("model", f"swap to {name!r} failed: {msg}")

            def failed(show: Show) -> None:
                show.model_error = f"swap to {name!r} failed: {msg}"
                show._swap_name = ""
                if show.store.target("model/select") == name:
                    # cleared, so selecting the same name again is a change and retries the load
                    show.store.set("model/select", "", source="model")

            self.inbox.put(failed)
            return

        def start(show: Show) -> None:
            show._incoming_state = ChainState()  # before incoming: a worker that sees one sees both
            show.incoming = model
            if show.model is None:  # nothing to fade from: take it at once
                show._finish_swap()
                return
            show._swap_t0 = time.monotonic()
        self.inbox.put(start)

    def crossfade(self) -> float:
        if self.incoming is None:
            return 0.0
        dur = float(self.store.get("model/crossfade"))
        return 1.0 if dur <= 0 else min(1.0, (time.monotonic() - self._swap_t0) / dur)

    def _finish_swap(self) -> None:
        model, self.incoming = self.incoming, None
        assert model is not None
        self._chain_state = self._incoming_state  # the temporal memory that went with the model faded in
        self.model, self.chain, self.stages, self.model_error = model, model.card.chain, [], ""
        for name, v in model.card.chain.param_values().items():
            self.store.set(name, v, source="model")
        self.stats.count("model_swaps")
        log.info("now playing model %s", model.name)

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
        for c in self.controls:
            handler = getattr(c, "on_key", None)
            if handler:
                handler(self, symbol, modifiers)

    # ---- view: draw only ------------------------------------------------------------------------
    def hud_text(self) -> list[str]:
        st = self.stats
        src = self.source
        lines = [f"{self.cfg.name}  {st.fps():5.1f} fps  latency p50 {st.latency_p50():5.1f} ms",
                 f"frames {st.counters['frames_presented']}  dropped {self.dropped()}  "
                 f"faults {sum(st.faults.values())}"]
        if self.model is not None:
            lines.append(f"model {self.model.name} {self.model.card.size[1]}x{self.model.card.size[0]} "
                         f"via {self.model.backend.providers[0].replace('ExecutionProvider', '')}")
        if self.model_error:
            lines.append("! " + self.model_error)
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
        if st.last_fault:
            lines.append("! last fault: " + st.last_fault)
        for extra in self.hud_lines:
            lines.extend(extra(self))
        return lines

    def dropped(self) -> int:
        return (self.source.dropped if self.source else 0) + self.results.dropped

    def view(self, result: Result | None) -> None:
        """Draw the newest result (or redraw the last one) and present it."""
        first = self._last is None  # freeze holds the picture shown: with none yet, the first one is let through
        if result is not None:
            self._last = result
        snap = self.snapshot
        r, d, st = self.renderer, self.display, self.stats
        assert r is not None and d is not None
        now = time.monotonic()
        hud_on = snap["hud/show"] and not snap["show/blackout"]  # blackout is black, HUD included
        if hud_on and now - self._t_overlay > 0.25:
            self._overlay = hud.overlay(self.hud_text())
            self._t_overlay = now
        fresh = result is not None and (first or not snap["show/freeze"])
        with st.time("draw"):
            if fresh:
                assert result is not None
                with st.time("upload"):
                    r.upload(result.layers, monitor=bool(snap["display/monitor"]))
                content = r.content_for(snap, self.crossfade())
            else:
                content = r.content
            r.present(snap, d.fbo, d.size, content)
            if hud_on:
                r.draw_hud(self._overlay, d.fbo, d.size)
            finish(d.ctx)  # 'present' means the GL work is done, not merely queued (GIL released)
        t_done = time.monotonic()
        if result is None:
            st.count("frames_held")  # the last picture again: no fresh frame came (source down, or stalled)
        else:
            st.presented(result.frame.t_capture, t_done)
            if not result.fresh:
                st.count("frames_reused")
        # a held picture is on screen too (blackout or HUD may change it); lockstep records source frames only
        picture = None  # one readback a frame, shared by the recorder and the outputs
        if self.recorder is not None and (result is not None or not self.opts.lockstep):
            with st.time("record"):
                picture = d.read()
                self.recorder.write(picture, t_done)
        if self.outputs is not None and self._last is not None:
            self.outputs.present(d.read if picture is None else picture, self._last.frame.t_capture)
        d.flip()

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        opts = self.opts
        next_redraw = 0.0
        t_fresh = t0
        headless = self.display.headless
        try:
            while not self._stop.is_set():
                self.update()
                try:
                    result = self.results.get(timeout=1 / 120)
                except SlotClosed:
                    break
                if self.renderer and self.renderer.shaders.reload_if_changed():
                    next_redraw = 0.0
                now = time.monotonic()
                if result is not None:
                    self.view(result)
                    next_redraw = now + 0.05
                    t_fresh = now
                elif now >= next_redraw and (not headless or now - t_fresh >= HOLD_AFTER_S):
                    # keep presenting while no frame comes (source lost, model stalled): the last picture,
                    # HUD, blackout and looks stay live; headless at a low rate, as a sign of life
                    self.view(None)
                    next_redraw = now + (1 / HOLD_FPS if headless else 1 / 30)
                n = self.stats.counters["frames_presented"]
                if opts.frames is not None and n >= opts.frames:
                    break
                if opts.seconds is not None and now - t0 >= opts.seconds:
                    break
        finally:
            summary = self.close()
        return summary

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict[str, Any]:
        import onnxruntime

        src = self.source
        return self.stats.to_dict({
            "show": self.cfg.name,
            "source": getattr(src, "name", None),
            "source_fps": getattr(src, "fps", None),
            "source_frames_read": getattr(src, "index", 0),
            "dropped_source": getattr(src, "dropped", 0),
            "dropped_inference": self.results.dropped,
            "dropped_total": self.dropped(),
            "reconnects": getattr(src, "reconnects", 0),
            "model": self.model.name if self.model else None,
            "model_error": self.model_error or None,
            "providers": self.model.backend.providers if self.model else [],
            "onnxruntime": onnxruntime.__version__,
            "gl_renderer": self.display.renderer_name if self.display else None,
            "display_size": list(self.display.size) if self.display else None,
            "lockstep": self.opts.lockstep,
            "inference_workers": self.workers_in_use,
            "recorded_frames": self.recorder.frames if self.recorder else 0,
            "recorded_seconds": round(self.recorder.seconds, 3) if self.recorder else 0.0,
            "recorded_rejected": self.recorder.rejected if self.recorder else 0,
            "shader_reloads": self.renderer.shaders.reloads if self.renderer else 0,
            "segment_failures": self.segmenter.failures if self.segmenter else 0,
            "segmented_frames": self.segmenter.segmented if self.segmenter else 0,
            "health": health_counters(self),
        })

    def close(self) -> dict[str, Any]:
        t_stopped = time.monotonic()  # the recording ends here, not after the threads have wound down
        self._stop.set()
        self.results.close()
        if self.source is not None:
            self.source.close()
        for t in self._infer_threads:
            t.join(timeout=5.0)
        if self.segmenter is not None:
            self.segmenter.close()
        for c in self.controls:
            try:
                c.close()
            except Exception as e:
                log.warning("closing %s: %s", type(c).__name__, e)
        if self.recorder is not None:
            self.recorder.close(t_stopped)
        summary = self.summary()
        if self.opts.stats:
            Path(self.opts.stats).parent.mkdir(parents=True, exist_ok=True)
            Path(self.opts.stats).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if self.display is not None:
            self.display.close()
        return summary


# ---- commands -----------------------------------------------------------------------------------
