"""The live loop, in nannou's shape: build the model of the show once, `update` it once per frame (input
drained, triggers handled, one immutable parameter snapshot published), then `view` it (draw only).

Threads: the source reads frames into a latest-wins slot; an inference worker takes the newest,
preprocesses, segments and runs the model, and puts the result into another latest-wins slot; the main
thread owns GL and draws. A slow stage drops stale frames, it never queues them; --lockstep makes every
slot wait instead, so each source frame is processed in order (repeatable rehearsals and recordings).

The show owns its parts and hands each what it uses: the inference workers (show/workers.py: threads,
worker plan, segmenter, still-room gate, results; the source they take frames from), the model slot
(inference/slot.py), the input (show/input.py: keys, the show's own triggers, grab), the governor
(show/governor.py), the renderer and display, its own parts (`parts`: health, schedule, outputs) and
the control surfaces (`surfaces`, given the narrow handle of show/handle.py). The HUD text is the
show's: it reports on every part.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.frames import LatestSlot, SlotClosed
from installation.core.params import ParamStore, Registry, Snapshot
from installation.core.timing import Stats
from installation.inference.models import Model, load_for_rate, plan_workers, show_backend
from installation.inference.slot import MODELS_DIR, ModelSlot
from installation.media.recorder import Recorder
from installation.render import hud
from installation.render.renderer import Renderer, finish
from installation.show.config import ShowConfig
from installation.show.governor import Governor
from installation.show.handle import ShowHandle
from installation.show.health import Health, counters
from installation.show.input import Input
from installation.show.options import RunOptions
from installation.show.schedule import ScheduleConfig, ScheduleControl
from installation.show.workers import Result, Workers

__all__ = ["RunOptions", "Show", "display_for", "model_dirs", "source_for"]

log = logging.getLogger("installation.show")


HOLD_AFTER_S = 0.5  # headless: with no fresh frame for this long, present the last picture again...
HOLD_FPS = 5.0  # ...at this rate (counted as frames_held, apart from fresh frames_presented)
SHADER_CHECK_S = 0.25  # how often the shader files are looked at for live editing
# a documented test load (docs/performance.md): milliseconds added to each drawn frame at full render
# scale, times the render scale squared as the pass's own cost goes, so the governor's knob pays for it
DRAW_COST_ENV = "INSTALLATION_DRAW_COST_MS"

class Show:
    """A show being played: built once, updated and viewed each frame, closed once."""

    def __init__(self, cfg: ShowConfig, opts: RunOptions, registry: Registry, *,
                 inference_threads: int | None = None) -> None:
        """`inference_threads`: None as planned (`[model] workers`, one with --lockstep); 0 starts none, and
        the caller hands each frame to `workers.process()` itself (the bench's naive loop)."""
        self.cfg = cfg
        self.opts = opts
        self.stats = Stats()
        self.registry = registry
        from installation.media.outputs import declare_outputs

        declare_outputs(self.registry, cfg.output, cfg.path)  # /output/NAME/on, before the store is made
        self.store = ParamStore(self.registry)
        self.inbox: queue.SimpleQueue[Callable[[Show], None]] = queue.SimpleQueue()
        self.hud_lines: list[Callable[[Show], list[str]]] = []  # extra HUD text from control surfaces
        self.parts: list[Any] = []  # the show's own parts with update(show) and close(): health, schedule, outputs
        self.surfaces: list[Any] = []  # control surfaces: update(handle) and close(), added through the handle
        self.handle = ShowHandle(self)  # all a control surface may reach of the show
        h = cfg.health
        self.slot = ModelSlot(self.open_model, self.store, self.stats, fail_after=h.model_fail_after,
                              retry_s=h.model_retry_s, retry_max_s=h.model_retry_max_s,
                              config_values={**cfg.params, **opts.extra_params}, dirs=model_dirs(cfg))
        self._stop = threading.Event()
        threads = (1 if opts.lockstep else plan_workers(cfg.model.workers)) if inference_threads is None \
            else inference_threads
        self.workers = Workers(self.slot, self.store, self.stats, self._stop, threads=threads,
                               lockstep=opts.lockstep, content_size=cfg.render.content_size,
                               seg_every=lambda: self.governor.settings.seg_every,
                               model_every=lambda: self.governor.settings.model_every)
        self.input = Input(cfg, opts, self.store, self.stats, self.workers, last=lambda: self._last, stop=self.stop)
        self.display: Any = None
        self.renderer: Renderer | None = None
        self.recorder: Recorder | None = None
        self.outputs: Any = None  # outputs.OutputStage: NDI, virtual camera
        self._last: Result | None = None
        self._overlay: Any = None
        self._t_overlay = 0.0
        self.snapshot: Snapshot = self.store.snapshot()
        self.overrides: dict[str, dict[str, Any]] = {}  # values laid over each snapshot, by owner (looks)
        self.backend: str | None = None  # [model] backend, None for "auto" (models.show_backend)
        # the frame-budget governor: idle until build() knows the source's rate
        self.governor = Governor(cfg.governor, None, segmenting=False, lockstep=opts.lockstep)
        self._draw_cost_ms = float(os.environ.get(DRAW_COST_ENV, "0") or 0)

    # ---- build -------------------------------------------------------------------------------
    def build(self) -> Show:
        cfg = self.cfg
        self.backend = show_backend(cfg.model.backend, cfg.path)  # first: a show that can't run fails at once
        self.workers.source = self.open_source()  # first: its frame rate decides how the model is run...
        self.load_initial_model()
        values: dict[str, Any] = {}
        if self.slot.chain is not None:
            values.update(self.slot.chain.param_values())
        values.update(cfg.params)
        values.update(self.opts.extra_params)
        for name, v in values.items():
            self.store.set(name, v, source="config", ramp_s=0.0)
        self.snapshot = self.store.publish()
        self.workers.open_segmenter()
        self.governor = Governor(self.cfg.governor, self.source_rate(), segmenting=self.snapshot["seg/mode"] != "none",
                                 lockstep=self.opts.lockstep)
        self.governor.resume(*self.governor_memory())  # where the last run on this CPU settled
        self.display = self.open_display()
        self.renderer = Renderer(self.display.ctx, cfg.render.content_size)
        self.display.on_key = self.on_key
        self.input.display = self.display
        if self.opts.record:
            self.recorder = Recorder(self.opts.record, self.display.size, self.source.fps or 30.0,
                                     lockstep=self.opts.lockstep)
        from installation.media.outputs import attach_outputs

        attach_outputs(self)  # [[output]]: each on its own thread, fed from the frame's one readback
        health = Health.for_show(cfg.name, cfg.health, self.opts.state)  # heartbeat, the periodic log line
        schedule = ScheduleControl(cfg.schedule or ScheduleConfig())  # opening hours and the attract look
        self.parts[:0] = [health, schedule]
        self.hud_lines.append(schedule.hud)
        self.attach_surfaces()  # app.Show: live values restored, presets, OSC in/out, record/replay, MIDI
        # the source starts last, when the model, the segmenter, the display and the shaders are ready: a
        # frame taken earlier waits for them and reaches the screen late (the first second of a 2-core
        # machine's rehearsal had a p95 of 150-280 ms while the screen and the segmenter opened)
        seg_ms = self.warm_up()
        # nothing resumed: a first guess from the model's trial inference at load and the warm-up's segmentation
        self.governor.start(self.slot.model.trial_ms if self.slot.model is not None else None, seg_ms or 0.0)
        self.source.start()
        self.workers.start()
        return self

    def warm_up(self) -> float | None:
        """Before the source starts, the first uses that cost far more than a frame: the segmenter's load
        and the shaders' first draws, on a black frame of the source's size. Nothing is counted and the
        screen stays black; the model had its trial inference when it was loaded. Returns what a
        segmentation took here once loaded, in ms (None: the show does not segment)."""
        src = self.cfg.source
        size = getattr(self.source, "size", None) or (src.width, src.height)
        w, h = int(size[0]), int(size[1])
        segmenting = self.snapshot["seg/mode"] != "none"
        seg_ms = None
        if segmenting and self.workers.segmenter is not None:
            seg_ms = self.workers.segmenter.warm_up(np.zeros((h, w, 3), np.uint8), self.snapshot)
        card = self.slot.model.card if self.slot.model is not None else None
        side = card.size[0] if card is not None else self.cfg.render.content_size
        if self.renderer is not None and self.display is not None:
            self.renderer.warm_up(self.snapshot, self.display.fbo, self.display.size, (w, h), side, segmenting)
        return seg_ms

    def attach_surfaces(self) -> None:
        """Control surfaces: none in a bare show. The composition root's Show (app.py) attaches them."""

    def load_initial_model(self) -> None:
        self.slot.load(self.cfg.model.path, self.cfg.model.then)

    def open_model(self, path: str | Path) -> Model:
        """Load a model for this show: its providers, and as many frames in flight as the source's rate
        needs (models.load_for_rate); one for chained models and with --lockstep."""
        setting = 1 if (self.opts.lockstep or self.cfg.model.then) else self.cfg.model.workers
        return load_for_rate(path, self.cfg.model.providers, setting, self.source_rate(), backend=self.backend,
                             precision=self.cfg.model.precision)

    def governor_memory(self) -> tuple[Path | None, str]:
        """Where the governor keeps its verdict (the state folder), and the CPU it is for."""
        from installation.core.cpu import cpu_name
        from installation.core.state import state_dir

        return state_dir(self.cfg.name, self.opts.state), cpu_name()

    def source_rate(self) -> float | None:
        """Frames a second the source delivers; None when it is read as fast as the loop can."""
        src = self.source
        if src is None or not getattr(src, "realtime", True):
            return None
        return float(getattr(src, "fps", 0.0)) or None

    def open_source(self) -> Any:
        """The show's source, not yet started (build() starts it once the model is loaded)."""
        return source_for(self.cfg, self.opts, self.stats)

    def open_display(self) -> Any:
        return display_for(self.cfg, self.opts)

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
        self.tell_parts("update")
        for name, value in self.store.drain_triggers():
            self.on_trigger(name, value)
        self.slot.update()
        snap = self.store.publish()
        if self.overrides:  # a look lays its values over the live ones; the store keeps the operator's
            laid = {k: v for values in self.overrides.values() for k, v in values.items() if k in snap}
            snap = Snapshot({**snap, **laid}, snap.version, snap.t)
        self.snapshot = snap
        self.governor.update(self.stats, source_frames=getattr(self.source, "index", None))
        return self.snapshot


    # ---- input, the show's parts and its control surfaces ------------------------------------------
    def on_trigger(self, name: str, value: Any = None) -> None:
        """A fired trigger with its argument (/preset/recall 3): the show's own (input), then every part
        and surface with on_trigger sees it and handles those it owns."""
        self.input.on_trigger(name, value)
        self.tell_parts("on_trigger", name, value)

    def on_key(self, symbol: int, modifiers: int) -> None:
        """A key in the window: the show's own keys (input), then the parts and surfaces, unless the kiosk
        modifier held it back."""
        if self.input.on_key(symbol, modifiers):
            self.tell_parts("on_key", symbol, modifiers)

    def tell_parts(self, method: str, *args: Any) -> None:
        """Call `method` on the show's own parts (with the show) and its control surfaces (with the narrow
        handle, show/handle.py), where they have it. A part that fails is counted; the others still hear."""
        for parts, arg in ((self.parts, self), (self.surfaces, self.handle)):
            for c in list(parts):
                handler = getattr(c, method, None)
                if handler is None:
                    continue
                try:
                    handler(arg, *args)
                except Exception as e:
                    self.stats.fault("control", f"{type(e).__name__}: {e}")

    def hud_text(self) -> list[str]:
        """The HUD's text: what every part of the show says of itself, then the parts' and surfaces' lines."""
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

    def gate_source(self, wrap: Callable[[Any], Any]) -> Any:
        """Put a wrapper between the source and the workers (OSC record / replay counts and gates frames);
        before the workers start. Returns the wrapper, which is now the show's source."""
        self.workers.source = wrap(self.workers.source)
        return self.workers.source

    def lay_over(self, owner: str, values: dict[str, Any]) -> None:
        """Values laid over each snapshot by `owner` (a look), or none when `values` is empty; the store
        keeps the operator's own values underneath."""
        if values:
            self.overrides[owner] = values
        else:
            self.overrides.pop(owner, None)

    @property
    def source(self) -> Any:
        """The source the workers take frames from (None before build)."""
        return self.workers.source

    @property
    def results(self) -> LatestSlot[Result]:
        """The workers' results: what the main thread draws."""
        return self.workers.results

    @property
    def last_result(self) -> Result | None:
        """The newest result presented (read by parts such as the attract look's presence check)."""
        return self._last

    @property
    def stopped(self) -> bool:
        """Whether the show was asked to stop."""
        return self._stop.is_set()

    def dropped(self) -> int:
        return self.workers.dropped()

    def fresh_stats(self) -> Stats:
        """Forget what was counted so far: new stats in the show and every part that counts into them
        (a bench's measuring window opens after its warm-up)."""
        self.stats = self.slot.stats = self.workers.stats = self.input.stats = Stats()
        return self.stats

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
                fade = self.slot.crossfade()
                if result.layers.output_b is not None and self.slot.incoming is None:
                    fade = 1.0  # painted during a crossfade that ended since: the incoming model plays now
                content = r.content_for(snap, fade)
            else:
                content = r.content
            scale = self.governor.settings.render_scale
            r.present(snap, d.fbo, d.size, content, scale=scale)
            if hud_on:
                r.draw_hud(self._overlay, d.fbo, d.size)
            finish(d.ctx)  # 'present' means the GL work is done, not merely queued (GIL released)
            if self._draw_cost_ms:
                time.sleep(self._draw_cost_ms * scale * scale / 1000.0)
        t_done = time.monotonic()
        if result is None:
            st.count("frames_held")  # the last picture again: no fresh frame came (source down, or stalled)
        else:
            st.presented(result.frame.t_capture, t_done)
            if result.t_model is not None:  # how old the model's picture on screen is (model_every glides)
                st.add_time("model_age", (t_done - result.t_model) * 1000.0)
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
        next_shader_check = 0.0
        t_fresh = t0
        headless = self.display.headless
        try:
            while not self._stop.is_set():
                self.update()
                try:
                    result = self.workers.results.get(timeout=1 / 120)
                except SlotClosed:
                    break
                now = time.monotonic()
                if self.renderer and now >= next_shader_check:
                    # a few times a second: stat()ing every shader file on each pass of this loop (up to 120
                    # a second) took an eighth of the main thread's busy time on a 2-core EPYC (py-spy)
                    next_shader_check = now + SHADER_CHECK_S
                    if self.renderer.shaders.reload_if_changed():
                        next_redraw = 0.0
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

    def close(self) -> dict[str, Any]:
        t_stopped = time.monotonic()  # the recording ends here, not after the threads have wound down
        self._stop.set()
        self.slot.close()
        self.workers.close()  # the results slot, the source, the threads, the segmenter
        for c in [*self.parts, *self.surfaces]:
            try:
                c.close()
            except Exception as e:
                log.warning("closing %s: %s", type(c).__name__, e)
        if self.recorder is not None:
            self.recorder.close(t_stopped)
        self.governor.save(*self.governor_memory())
        summary = self.summary()
        if self.opts.stats:
            Path(self.opts.stats).parent.mkdir(parents=True, exist_ok=True)
            Path(self.opts.stats).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        if self.display is not None:
            self.display.close()
        return summary


    def counters(self) -> dict[str, Any]:
        """The health figures (show/health.counters): the stats JSON, the heartbeat, the log line, OSC
        /status and the web's status page. Any thread: it only reads."""
        return counters(self.stats, self.workers, self.slot, self.governor)

    def summary(self) -> dict[str, Any]:
        """What a run did, for --stats and the bench: the stats, what played on what, the health figures."""
        import onnxruntime

        from installation.core.cpu import cpu_record

        src, slot, rec, seg = self.source, self.slot, self.recorder, self.workers.segmenter
        return self.stats.to_dict({
            "show": self.cfg.name,
            "source": getattr(src, "name", None),
            "source_fps": getattr(src, "fps", None),
            "source_frames_read": getattr(src, "index", 0),
            "dropped_source": getattr(src, "dropped", 0),
            "dropped_inference": self.results.dropped,
            "dropped_total": self.dropped(),
            "reconnects": getattr(src, "reconnects", 0),
            "model": slot.model.name if slot.model else None,
            "model_error": slot.error or None,
            "providers": slot.model.backend.providers if slot.model else [],
            "onnxruntime": onnxruntime.__version__,
            "cpu": cpu_record(),  # the machine these figures came from: name, flags, cores
            "gl_renderer": self.display.renderer_name if self.display else None,
            "display_size": list(self.display.size) if self.display else None,
            "lockstep": self.opts.lockstep,
            "inference_workers": self.workers.in_use,
            "recorded_frames": rec.frames if rec else 0,
            "recorded_seconds": round(rec.seconds, 3) if rec else 0.0,
            "recorded_rejected": rec.rejected if rec else 0,
            "shader_reloads": self.renderer.shaders.reloads if self.renderer else 0,
            "segment_failures": seg.failures if seg else 0,
            "segmented_frames": seg.segmented if seg else 0,
            "health": self.counters(),
        })


# ---- the parts a show file names ------------------------------------------------------------------


def model_dirs(cfg: ShowConfig) -> list[Path]:
    """Where a model's bare name is looked up, first match wins: the show's models folder (the one
    holding its configured model, else models/ beside the show file), then the installed models."""
    dirs = []
    if cfg.model.path is not None:
        dirs.append(Path(cfg.model.path).parent)
    if cfg.path is not None:
        dirs.append(Path(cfg.path).parent / "models")
    return list(dict.fromkeys(d.resolve() for d in [*dirs, MODELS_DIR]))


def source_for(cfg: ShowConfig, opts: RunOptions, stats: Stats) -> Any:
    """The show's source, or the clip a rehearsal plays instead, wrapped for pacing and reconnection."""
    from installation.media.sources import open_source, video_source

    src = cfg.source
    if src.kind == "ndi" and opts.video is None:
        from installation.media.ndi import ndi_source

        return ndi_source(src.name, src.width, src.height, src.fps, lockstep=opts.lockstep, on_fault=stats.fault)
    if opts.video is not None:
        return video_source(opts.video, loop=True, realtime=opts.realtime, lockstep=opts.lockstep,
                            on_fault=stats.fault)
    return open_source(src.kind, lockstep=opts.lockstep, realtime=opts.realtime, on_fault=stats.fault,
                       start=False, **src.model_dump(exclude={"kind"}))


def display_for(cfg: ShowConfig, opts: RunOptions) -> Any:
    from installation.render.displays import HeadlessDisplay, WindowDisplay

    r = cfg.render
    if opts.headless:
        return HeadlessDisplay((r.width, r.height))
    fullscreen = r.fullscreen if opts.fullscreen is None else opts.fullscreen
    return WindowDisplay(fullscreen=fullscreen, screen=r.screen, size=(r.width, r.height), vsync=r.vsync)
