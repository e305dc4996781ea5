"""The inference workers of a show, as one object: the threads that take frames from the source, the
worker plan (how many run side by side), the segmentation thread beside the model, the still-room gate,
the temporal memory of the output, and the results slot the main thread draws from.

A frame taken from the source is segmented, preprocessed at the frame's snapshot, run through the model
(chained models after it, the incoming one in a crossfade), given the output's temporal step, and put
into the results slot as a Result. The locks, once: `_pre_lock` holds everything up to the model's input
(segmentation submit, the temporal input steps, the still-room gate) so those steps see frames in the
order they were taken; the model itself runs outside any lock (ONNX Runtime sessions take concurrent
runs); `_out_lock` holds the output's temporal step and the newest-output bookkeeping (`_t_out`,
`prev_output`), in capture order. A result that finishes after a newer one is dropped (_LATE), so the
screen never steps back. While the governor has the model on every Nth frame only (model_every), the
frames between glide its last picture (glide), and a frame due for the model hands its input to the model
lane (a thread of its own) and glides too: no frame waits for an inference, and the lane's picture is
glided in by the frames after it (_glide_in). The show hands the workers what they use (model slot, store,
stats, the stop event, the governor's segmentation rate); nothing here reads the show itself.
"""


from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from installation.core.frames import EndOfStream, Frame, LatestSlot, SlotClosed
from installation.core.params import ParamStore, Snapshot
from installation.core.timing import Stats
from installation.inference.models import Model
from installation.inference.slot import ModelSlot
from installation.render.renderer import Layers
from installation.vision.preprocess import Chain, ChainState
from installation.vision.stillness import StillnessGate

log = logging.getLogger("installation.show")

_LATE = object()  # a frame finished after a newer one: dropped so the screen never steps back
# How long a worker may wait for its own frame's mask: as long as its last inference took, within these
# bounds. The segmenter starts on the frame when the worker does, so it is mostly done by then.
SEG_WAIT_MIN_S = 0.002
SEG_WAIT_MAX_S = 0.05


@dataclass
class Result:
    """One processed frame, from the inference thread to the main thread."""

    frame: Frame
    layers: Layers
    fresh: bool = True  # False when the output was reused rather than inferred
    t_ready: float = 0.0
    # capture time of the frame the model's picture was painted from: this frame's when inferred, an older
    # one's for a frame between inferences (the stats' model_age); None without a model picture to date
    t_model: float | None = None


@dataclass
class _Painting:
    """A frame's model input, handed to the lane that paints beside the frames (Workers._lane_loop)."""

    model: Model
    frame: Frame
    x: np.ndarray

    def infer(self) -> np.ndarray:
        return self.model.infer(self.x)


class Workers:
    """The inference threads of a show and the state they share (see the module's docstring)."""

    def __init__(self, slot: ModelSlot, store: ParamStore, stats: Stats, stop: threading.Event, *,
                 threads: int, lockstep: bool, content_size: int,
                 seg_every: Callable[[], int] = lambda: 1, model_every: Callable[[], int] = lambda: 1) -> None:
        """`threads`: inference threads start() starts, the most frames in flight (the playing model
        says how many it takes, Model.parallel); 0 starts none, and the caller hands each frame to
        process() itself (the bench's naive loop). `stop`: the show's; the threads end when it is set.
        `seg_every`: segment every n-th frame at most; `model_every`: run the model on every n-th frame at
        most, the frames between glide its last picture (the governor's settings, asked each frame)."""
        self.slot, self.store, self.stats = slot, store, stats
        self.threads = threads
        self.lockstep = lockstep
        self.content_size = content_size  # the plain chain's side when no model plays
        self.seg_every = seg_every
        self.model_every = model_every
        self.source: Any = None  # where frames are taken from: the show sets it before start()
        self.segmenter: Any = None  # vision/segment_worker.SegmentWorker, from open_segmenter()
        self.still = StillnessGate()  # skips inference while the room is still (stillness.py)
        self.results: LatestSlot[Result] = LatestSlot("results", lockstep=lockstep)
        self._stop_event = stop
        self._threads: list[threading.Thread] = []
        self._pre_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._t_out = float("-inf")  # capture time of the newest frame whose output was finished
        self._prev_output: np.ndarray | None = None  # the newest output by capture time (set with _t_out)
        self._seg_wait_s = SEG_WAIT_MIN_S  # how long mask_of may wait for a frame's own mask (set per inference)
        self._t_let_through = float("-inf")  # capture time of the newest frame the still-room gate let through
        self._raw: np.ndarray | None = None  # the model's last picture before the output step (set with _t_out)
        self._raw_of: Model | None = None  # ...and the model that painted it (a swap starts afresh)
        self._raw_t = float("-inf")  # ...and the capture time of the frame it was painted from
        # the lane: while the model runs on every Nth frame only, it paints there, beside the frames
        self._paintings: LatestSlot[_Painting] = LatestSlot("paintings")
        self._lane: threading.Thread | None = None
        self._painting = False  # the lane has a frame in the model (under _pre_lock)
        self._since_model = 0  # frames taken since the last one the model ran on (model_every)

    def open_segmenter(self) -> None:
        """The segmentation thread (it starts at once; a show with seg/mode "none" leaves it idle)."""
        from installation.vision.segment_worker import SegmentWorker

        self.segmenter = SegmentWorker(on_fault=lambda kind, msg, e: self.stats.fault(kind, msg, exc=e))

    def start(self) -> None:
        """Start the inference threads; they take frames from `self.source`. And the lane, unless no
        thread is started (frames handed over by hand)."""
        self._threads = [threading.Thread(target=self._infer_loop, args=(i,), name=f"inference-{i}", daemon=True)
                         for i in range(self.threads)]
        for t in self._threads:
            t.start()
        if self.threads:
            self.start_lane()

    def start_lane(self) -> None:
        """The thread the model paints on while it runs on every Nth frame only (model_every > 1): the frame
        it paints is shown at once, gliding the last picture like the frames between, so no frame waits for
        an inference; the picture, once painted, is glided in by the frames after it. Without the lane
        (the bench's naive loop, a test driving frames by hand) the model runs in line."""
        if self._lane is None:
            self._lane = threading.Thread(target=self._lane_loop, name="model-lane", daemon=True)
            self._lane.start()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the threads to end (after the stop event, or the source's end)."""
        for t in self._threads:
            t.join(timeout=timeout)

    def close(self) -> None:
        """End the threads (the show's stop event is set first): the results slot and the source close,
        the threads are joined, the segmenter closes."""
        self.results.close()
        self._paintings.close()
        if self.source is not None:
            self.source.close()
        self.join()
        if self._lane is not None:
            self._lane.join(timeout=5.0)
        if self.segmenter is not None:
            self.segmenter.close()

    @property
    def prev_output(self) -> np.ndarray | None:
        """The newest output by capture time: the temporal input of the next frame."""
        return self._prev_output

    def let_through(self, t_capture: float) -> None:
        """Note that a frame of this capture time passed the still-room gate and is being inferred (another
        worker's frame, for a test that plays two workers by hand)."""
        self._t_let_through = t_capture

    def dropped(self) -> int:
        """Frames dropped: by the source (a newer one came first) and in the results slot."""
        return (self.source.dropped if self.source is not None else 0) + self.results.dropped

    def _infer_loop(self, worker: int = 0) -> None:
        while not self._stop_event.is_set():
            if worker and not self.side_by_side(worker):
                self._stop_event.wait(0.02)  # one frame at a time for now (GPU, chained models, a crossfade)
                continue
            try:
                frame = self.source.recv(timeout=0.25)
            except EndOfStream:
                self.results.close()
                return
            if frame is None:
                continue
            snap = self.store.snapshot()
            try:
                result = self.process(frame, snap, self.slot.chain_state, self._prev_output)
            except Exception as e:  # a picture must stay up: count it, log it once, go on
                self.stats.fault("inference", f"{type(e).__name__}: {e}", exc=e)
                continue
            if result is None:
                continue  # finished after a newer frame: dropped
            if not self.results.put(result, timeout=None if self.lockstep else 0,
                                    order=result.frame.t_capture):
                return

    def side_by_side(self, worker: int) -> bool:
        """May this (extra) worker take a frame now? Only for a model that runs concurrently, alone."""
        slot = self.slot
        model = slot.model
        return model is not None and worker < model.parallel and slot.incoming is None and not slot.stages

    @property
    def in_use(self) -> int:
        """Threads taking frames now: the most the playing model runs side by side (1 without one)."""
        model = self.slot.model
        return min(self.threads, model.parallel) if model is not None else 1

    def process(self, frame: Frame, snap: Snapshot, state: ChainState,
                prev_output: np.ndarray | None) -> Result | None:
        """One frame through segmentation, preprocessing and the model(s): pure work, no GL. None when
        another worker finished a newer frame first."""
        slot = self.slot
        # read once: the main thread may start or finish a swap while this frame is in flight
        model, chain, stages, incoming, incoming_state = (slot.model, slot.chain, slot.stages, slot.incoming,
                                                          slot.incoming_state)
        chain = chain or Chain.from_spec("plain", (self.content_size,) * 2)
        st = self.stats
        gpu = None
        output = model_input = output_b = None
        image = frame.image
        with self._pre_lock:  # steps that remember the last frame: in the order frames were taken
            # segmentation starts on this frame now and runs beside the model; its mask is collected after
            # the model (mask_of), unless the model's own input is cut by it (a 'mask' step) or lockstep
            submitted = self.submit_segment(frame, snap)
            early = self.lockstep or any(s.kind == "mask" for s in chain.steps)
            mask = self.mask_of(frame, submitted, self._seg_wait_s) if early else None
            if model is not None and incoming is None and not stages:
                from installation.inference.torch_backend import gpu_path_for

                gpu = gpu_path_for(model)  # torch on CUDA: preprocess + infer on the GPU, output stays there
                if gpu is None and self.between(model):
                    # the newest mask, not a wait for this frame's: there is no inference to wait beside, and
                    # a wait here holds back the next frame the model runs on
                    mask = mask if early else self.mask_of(frame, submitted, 0.0)
                    return self.glide(frame, chain, snap, state, mask)
            if model is not None and gpu is None:
                with st.time("preprocess"):
                    model_input, _ = chain.apply_live(image, snap, state, mask, prev_output)
                if (prev_output is not None and incoming is None
                        and self.still.still(model_input, float(snap["model/skip_still"]), key=model)):
                    st.count("frames_still")
                    with self._out_lock:
                        t_out, reused = self._t_out, self._prev_output
                    if t_out < self._t_let_through:
                        # still against a frame another worker is inferring right now: that frame's picture
                        # is the one to show. Reusing the older output would overwrite it in the results
                        # slot (newer capture time) and step the screen back to it.
                        return None
                    mask = mask if early else self.mask_of(frame, submitted, self._seg_wait_s)
                    return Result(frame, Layers(output=reused, model_input=model_input,
                                                **self._lazy_view(chain, image, snap, mask)),
                                  fresh=False, t_ready=time.monotonic())
                self._t_let_through = frame.t_capture
                if self._lane is not None and incoming is None and not stages and self.glides(model):
                    # painted on the lane; this frame is shown now, gliding the last picture
                    self._painting = True
                    self._paintings.put(_Painting(model, frame, model_input))
                    mask = mask if early else self.mask_of(frame, submitted, 0.0)
                    return self.glide(frame, chain, snap, state, mask)
        if model is not None:
            infer: Callable[[], Any]
            finish: Callable[[Any], Any]
            if gpu is not None:  # a GPU model runs one frame at a time (Model.parallel 1): no lock needed
                def infer() -> Any:
                    return gpu.process(image, snap, state)

                def finish(y: Any) -> Any:
                    return y  # the GPU path did the output step on the device
            else:
                def view() -> tuple[np.ndarray, np.ndarray | None]:
                    return chain.view(image, snap, mask if early else self.mask_of(frame, submitted, 0.0))

                def infer() -> Any:
                    return self._infer_cpu(model, stages, model_input, snap, state, view)

                def finish(y: Any) -> Any:
                    return chain.apply_output(y, snap, state)
            output = self._run_model(model, frame, infer, finish, prev_output)
            if output is _LATE:
                return None
        if not early:  # the model took long enough for the segmenter to finish this frame, mostly
            mask = self.mask_of(frame, submitted, self._seg_wait_s)
        if incoming is not None:
            output_b = self._infer_incoming(incoming, incoming_state, frame, snap, mask)
        return Result(frame, Layers(output=output, model_input=model_input, output_b=output_b,
                                    **self._lazy_view(chain, image, snap, mask)),
                      fresh=output is not None, t_ready=time.monotonic(),
                      t_model=frame.t_capture if output is not None else None)

    def glides(self, model: Model) -> bool:
        """Under _pre_lock: may a frame glide the last picture of `model` (model_every > 1, a picture of its
        own to glide)?"""
        n = 1 if self.lockstep else self.model_every()
        return n > 1 and self._raw is not None and self._raw_of is model

    def between(self, model: Model) -> bool:
        """Under _pre_lock: is this a frame between two the model runs on (the governor's model_every)?
        Counted from the last frame inferred, not by index, so frames the source dropped do not make two
        skips in a row. A frame due while the lane is still painting glides too, and the next one is due."""
        if not self.glides(model):
            self._since_model = 0
            return False
        n = self.model_every()
        # with another worker's frame still in the model, this one is inferred too: a glide now would
        # have to be dropped (its picture older than the one coming), costing a frame instead of a run
        in_flight = self._t_out < self._t_let_through
        if (self._since_model + 1 < n or self._painting) and not in_flight:
            self._since_model = min(self._since_model + 1, n - 1)
            return True
        self._since_model = 0
        return False

    def glide(self, frame: Frame, chain: Chain, snap: Snapshot, state: ChainState,
              mask: np.ndarray | None) -> Result | None:
        """A frame between inferences: its own camera picture and mask, and the model's last picture through
        the card's output step once more (the output smoothing glides on towards it; without one, the same
        picture). None when a frame another worker is inferring is newer: its picture is the one to show."""
        with self._out_lock:
            if (self._t_out < self._t_let_through and not self._painting) or frame.t_capture < self._t_out \
                    or self._raw is None:
                return None
            output = chain.apply_output(self._raw, snap, state)
            self._t_out, self._prev_output, t_model = frame.t_capture, output, self._raw_t
        self.stats.count("frames_between")
        return Result(frame, Layers(output=output, **self._lazy_view(chain, frame.image, snap, mask)),
                      fresh=False, t_ready=time.monotonic(), t_model=t_model)

    def _lane_loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                job = self._paintings.get(timeout=0.25)
            except SlotClosed:
                return
            if job is None:
                continue
            try:
                self._run_model(job.model, job.frame, job.infer, lambda y: y, None, shown=True)
            except Exception as e:  # _run_model counts the model's own faults; anything else here too
                self.stats.fault("inference", f"{type(e).__name__}: {e}", exc=e)
            finally:
                with self._pre_lock:
                    self._painting = False

    @staticmethod
    def _lazy_view(chain: Chain, image: np.ndarray, snap: Snapshot, mask: np.ndarray | None) -> dict[str, Any]:
        """The camera view (flip and crop) and the mask cut alike, made when a pass, a grab or a look
        reads them, not before (Layers(view=...))."""
        def view() -> tuple[np.ndarray, np.ndarray | None]:
            return chain.view(image, snap, mask)

        return {"view": view, "has_mask": mask is not None}

    def _infer_cpu(self, model: Model, stages: list[Model], x: np.ndarray, snap: Snapshot, state: ChainState,
                   view: Callable[[], tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        output = model.infer(x)
        stage_mask = view()[1] if stages else None  # aligned with output
        for i, stage in enumerate(stages):
            output = self._run_stage(stage, output, snap, state.of(1000 + i), stage_mask)
        return output

    def _run_model(self, model: Model, frame: Frame, infer: Callable[[], Any], finish: Callable[[Any], Any],
                   prev_output: np.ndarray | None, shown: bool = False) -> Any:
        """The one fault handling every inference path goes through (CPU, chained, GPU, the lane): a failure
        is counted and its traceback logged the first time, the last picture stays up, and a model that
        keeps failing is dropped (ModelSlot.drop_failing), to be loaded again. _LATE when a newer frame
        finished first, or the frame was `shown` already (the lane): then its picture is glided in."""
        st = self.stats
        failure: Exception | None = None
        output = None
        t0 = time.perf_counter()
        try:
            with st.time("infer"):
                output = infer()
        except Exception as e:
            failure = e
        # the segmenter ran beside this inference: its mask may be waited for as long again (mask_of)
        self._seg_wait_s = max(SEG_WAIT_MIN_S, min(time.perf_counter() - t0, SEG_WAIT_MAX_S))
        with self._out_lock:  # the output's temporal step, in capture order
            if failure is None:
                if shown or frame.t_capture < self._t_out:
                    if not self._glide_in(model, frame, output):
                        st.count("frames_late")
                        return _LATE
                    st.count("frames_inferred")
                    self.slot.succeeded()
                    return _LATE
                raw = output
                try:
                    output = finish(output)
                except Exception as e:
                    failure = e
            if failure is not None:
                st.fault("model", f"{type(failure).__name__}: {failure}", exc=failure)
                # done with, though failed: frames still against it reuse the last picture, not wait for it
                self._t_out = max(self._t_out, frame.t_capture)
                return None if self.slot.drop_failing(model, failure) else prev_output
            self._t_out = frame.t_capture
            if isinstance(output, np.ndarray):  # a GPU picture stays on the device, never fed back
                self._prev_output = output
                self._raw = raw if isinstance(raw, np.ndarray) and not self.slot.stages else None
                self._raw_of, self._raw_t = model, frame.t_capture
            st.count("frames_inferred")
            self.slot.succeeded()
            return output

    def _glide_in(self, model: Model, frame: Frame, raw: Any) -> bool:
        """Under _out_lock: a picture the lane painted for a frame already shown is not a frame of its own;
        the frames after it glide towards it. False when it is of no use: older than the picture gliding
        now, another model's, not a picture on the CPU, or under chained models."""
        if (not isinstance(raw, np.ndarray) or self.slot.stages or model is not self._raw_of
                or frame.t_capture <= self._raw_t):
            return False
        self._raw, self._raw_t = raw, frame.t_capture
        return True

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

    def submit_segment(self, frame: Frame, snap: Snapshot) -> bool:
        """Hand this frame to the segmentation thread; True when it will segment it (seg/every may skip it)."""
        worker = self.segmenter
        if worker is None or snap["seg/mode"] == "none":
            return False
        with self.stats.time("segment_submit"):
            return bool(worker.submit(frame.index, frame.image, snap, every=self.seg_every()))

    def mask_of(self, frame: Frame, submitted: bool, wait_s: float) -> np.ndarray | None:
        """The person mask for this frame: this frame's own when the segmenter finishes it within `wait_s`
        (lockstep: always), else the newest it has. The wait is bounded by what the model took meanwhile
        (_seg_wait_s), so a slow segmenter costs the frame a mask a frame older, never the frame rate."""
        worker = self.segmenter
        if worker is None:
            return None
        if self.lockstep and submitted:
            got = worker.wait_for(frame.index, 5.0)
        elif submitted and wait_s > 0:
            with self.stats.time("segment_wait"):
                got = worker.wait_for(frame.index, wait_s)
        else:
            got = worker.latest()
        if got is None:
            return None
        mask, _ = got
        (mh, mw), (h, w) = mask.shape[:2], frame.image.shape[:2]
        return mask if abs(mh / mw - h / w) < 0.02 else None  # a mask of an older, other-shaped source
