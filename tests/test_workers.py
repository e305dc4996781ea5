"""Two inference workers on the CPU: frames in flight side by side, the screen never steps back in time,
the temporal steps stay in order, and one worker wherever that is what the show needs."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_model_folder, small_show

from installation.app import RunOptions, Show, load_show
from installation.core.frames import LatestSlot
from installation.inference.models import (
    SECOND_WORKER_FROM_MS,
    cpu_cores,
    default_threads,
    load_for_rate,
    load_model,
    plan_cpu,
    plan_workers,
)
from installation.show.workers import Result


def test_slot_drops_an_item_older_than_one_already_put():
    slot: LatestSlot[str] = LatestSlot()
    assert slot.put("newer", order=2.0)
    assert slot.put("older", order=1.0)  # finished late: not an error, just dropped
    assert slot.get(0) == "newer"
    assert slot.late == 1 and slot.dropped == 1
    slot.put("newest", order=3.0)
    assert slot.get(0) == "newest"


def shape(plan) -> tuple[int, int]:
    return plan.workers, plan.threads


def test_worker_plan():
    assert plan_workers("auto", cores=1) == 1
    assert plan_workers("auto", cores=2) == 2  # time unknown: the most auto may use (threads to start)
    assert plan_workers("auto", cores=16) == 2
    # one inference in half the frame interval: one frame at a time, on every core, answers soonest
    assert shape(plan_cpu("auto", cores=2, infer_ms=10.0, source_fps=30.0)) == (1, 0)
    # throughput needed, a model that is not most of the frame: still one worker on every core (its idle
    # threads sleep, the draw and the decoder run between inferences)
    assert shape(plan_cpu("auto", cores=2, infer_ms=10.0, source_fps=60.0)) == (1, 0)
    assert shape(plan_cpu("auto", cores=2, infer_ms=10.0, source_fps=None)) == (1, 0)  # unpaced
    assert shape(plan_cpu("auto", cores=8, infer_ms=10.0, source_fps=None)) == (1, 0)
    # a model that is most of the frame: a second frame in flight uses the core the rest leaves idle
    assert shape(plan_cpu("auto", cores=2, infer_ms=SECOND_WORKER_FROM_MS, source_fps=None)) == (2, 1)
    assert plan_workers("auto", cores=1, infer_ms=50.0, source_fps=60.0) == 1
    assert plan_workers(3) == 3 and plan_workers(1, cores=16) == 1
    assert "unpaced" in plan_cpu("auto", cores=2, infer_ms=10.0).why  # what `check` prints
    assert default_threads(1) == 0  # one worker: ONNX Runtime's own choice, every core
    assert default_threads(2) == max(1, cpu_cores() // 2)


@pytest.mark.parametrize("text, value", [('"auto"', "auto"), ("1", 1), ("2", 2)])
def test_workers_in_a_show_file(tmp_path: Path, text: str, value: Any):
    path = tmp_path / "s.toml"
    path.write_text(f"[model]\nworkers = {text}\n")
    assert load_show(path).model.workers == value


def test_auto_times_the_model_against_the_source_rate(tmp_path: Path):
    folder = make_model_folder(tmp_path / "m", size=48)
    slow_source = load_for_rate(folder, "cpu", "auto", source_fps=30.0)  # a tiny model keeps up easily
    assert slow_source.parallel == 1
    assert slow_source.backend.session.get_session_options().intra_op_num_threads == 0  # type: ignore[attr-defined]
    unpaced = load_for_rate(folder, "cpu", "auto", source_fps=None)  # a tiny model is never most of a frame
    assert unpaced.parallel == 1
    threads = unpaced.backend.session.get_session_options().intra_op_num_threads  # type: ignore[attr-defined]
    assert threads == 0  # every core: a quiet machine's draw and decoder run between inferences
    assert load_for_rate(folder, "cpu", 1, source_fps=None).parallel == 1
    assert 0 < slow_source.time_inference() < 1000


def test_a_show_at_camera_rate_runs_one_frame_at_a_time(tmp_path):
    model = make_model_folder(tmp_path / "models" / "m", size=48)
    cfg = load_show(small_show(tmp_path, model=model, source='kind = "synthetic"\nwidth = 160\nheight = 90'))
    show = Show(cfg, RunOptions(headless=True, frames=5, realtime=True)).build()
    try:
        assert show.source_rate() == 30.0 and show.slot.model.parallel == 1 and show.workers.in_use == 1
    finally:
        show.close()


def test_one_session_infers_from_two_threads_as_from_one(tmp_path: Path):
    folder = make_model_folder(tmp_path / "m", size=48)
    model = load_model(folder, "cpu", workers=2)
    assert model.parallel == 2
    opts = model.backend.session.get_session_options()  # type: ignore[attr-defined]
    assert opts.intra_op_num_threads == default_threads(2)
    rng = np.random.default_rng(1)
    pictures = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(24)]
    alone = [model.infer(p) for p in pictures]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(model.infer, pictures))
    for a, b in zip(alone, together, strict=True):
        assert np.array_equal(a, b)  # each thread fills its own input tensor


class WatchedShow(Show):
    """The show, noting which worker inferred each frame and the capture times in the order presented."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inferred_by: set[str] = set()
        self.presented_t: list[float] = []
        lock = threading.Lock()
        process = self.workers.process

        def watched(frame: Any, *args: Any) -> Result | None:  # the workers' own, noting the thread
            result = process(frame, *args)
            if result is not None and result.fresh:
                with lock:
                    self.inferred_by.add(threading.current_thread().name)
            return result

        self.workers.process = watched  # type: ignore[method-assign]

    def view(self, result: Result | None) -> None:
        if result is not None:
            self.presented_t.append(result.frame.t_capture)
        super().view(result)


def _show(tmp_path: Path, chain: str, workers: int | str, lockstep: bool = False, frames: int = 60) -> WatchedShow:
    model = make_model_folder(tmp_path / "models" / chain, size=48, chain=chain)
    cfg = load_show(small_show(tmp_path, model=model, source='kind = "synthetic"\nwidth = 160\nheight = 90\n'
                                                            "fps = 240"))
    cfg.model.workers = workers
    return WatchedShow(cfg, RunOptions(headless=True, frames=frames, realtime=False, lockstep=lockstep,
                                       extra_params={"model/skip_still": 0.0}))


@pytest.mark.parametrize("chain", ["plain", "edges"])  # edges: input and output lerps, both temporal
def test_two_workers_share_the_frames_and_the_screen_never_steps_back(tmp_path, chain):
    show = _show(tmp_path, chain, workers=2).build()
    assert show.workers.threads == 2 and show.workers.side_by_side(1)
    summary = show.run()
    assert summary["frames_presented"] == 60
    assert show.inferred_by == {"inference-0", "inference-1"}
    t = show.presented_t
    assert all(b >= a for a, b in itertools.pairwise(t)), "capture times presented in order"
    assert summary["inference_workers"] == 2
    assert summary["faults"] == {}


def test_one_worker_with_lockstep_chained_models_or_a_crossfade(tmp_path):
    show = _show(tmp_path, "plain", workers=2, lockstep=True, frames=10).build()
    assert show.workers.threads == 1
    show.run()
    assert show.inferred_by == {"inference-0"}
    show = _show(tmp_path, "plain", workers=2).build()
    try:
        assert show.workers.side_by_side(1)
        show.slot.stages = [show.slot.model]
        assert not show.workers.side_by_side(1)
        show.slot.stages = []
        show.slot.incoming = show.slot.model
        assert not show.workers.side_by_side(1)
        show.slot.incoming = None
        show.slot.model.parallel = 1  # a GPU session takes one run at a time
        assert not show.workers.side_by_side(1)
    finally:
        show.close()


def test_workers_one_keeps_every_core_for_one_session(tmp_path):
    show = _show(tmp_path, "plain", workers=1, frames=5).build()
    try:
        assert show.workers.threads == 1 and show.slot.model.parallel == 1
        assert show.slot.model.backend.session.get_session_options().intra_op_num_threads == 0
    finally:
        show.close()
