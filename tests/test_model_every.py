"""The governor's last step, the model on every Nth frame: the frames between keep their own camera
picture and carry the model's last picture on through the card's output smoothing (real ONNX Runtime
session, real chain; the workers driven by hand, frame by frame)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from conftest import make_model_folder, small_show

from installation.app import RunOptions, Show, load_show
from installation.core.frames import Frame

SOURCE = 'kind = "synthetic"\nwidth = 160\nheight = 90\nfps = 30'


def _show(tmp_path: Path, model_every: int) -> Show:
    model = make_model_folder(tmp_path / "m", size=48, chain="edges")  # edges ends with an output lerp
    tail = f'[governor]\nmode = "off"\nmodel_every = {model_every}'
    cfg = load_show(small_show(tmp_path, model=model, source=SOURCE, tail=tail))
    opts = RunOptions(headless=True, frames=1, realtime=False, extra_params={"model/skip_still": 0.0})
    return Show(cfg, opts, inference_threads=0).build()  # no threads: each frame is handed over here


def _frames(n: int) -> list[Frame]:
    """A bright block crossing a dark picture: edges that move from frame to frame."""
    out = []
    for i in range(n):
        image = np.full((90, 160, 3), 30, np.uint8)
        image[20:70, 40 + 8 * i:80 + 8 * i] = (230, 200, 90)
        out.append(Frame(image, i, 100.0 + i / 30))
    return out


def _play(show: Show, frames: list[Frame]) -> list:
    w = show.workers
    return [w.process(f, show.store.snapshot(), show.slot.chain_state, w.prev_output) for f in frames]


def test_the_model_runs_on_every_other_frame_and_the_picture_glides_between(tmp_path: Path) -> None:
    show = _show(tmp_path, 2)
    try:
        assert show.governor.settings.model_every == 2, "a pin applies with the governor off"
        frames = _frames(8)
        results = _play(show, frames)
        assert [r.fresh for r in results] == [True, False] * 4
        assert show.stats.counters["frames_between"] == 4 and show.stats.counters["frames_inferred"] == 4
        model, chain = show.slot.model, show.slot.chain
        a = float(show.store.snapshot()["post/output_lerp"])
        assert a > 0, "the edges chain smooths its output"
        for i in (2, 4, 6):  # an inferred frame, then the one between
            raw = model.infer(results[i].layers.model_input).astype(np.float32)
            shown, between = (results[i].layers.output.astype(np.float32),
                              results[i + 1].layers.output.astype(np.float32))
            # the frame between moves on towards the model's last picture, as the smoothing would
            assert np.abs(between - raw).mean() < np.abs(shown - raw).mean()
            assert np.abs(between - (shown * a + raw * (1 - a))).max() <= 1.0
            # ...with its own camera picture
            camera, _ = chain.view(frames[i + 1].image, show.store.snapshot(), None)
            assert np.array_equal(results[i + 1].layers.camera, camera)
            assert results[i + 1].frame is frames[i + 1]
    finally:
        show.close()


def test_every_frame_is_inferred_when_the_model_is_pinned_to_every_frame(tmp_path: Path) -> None:
    show = _show(tmp_path, 1)
    try:
        results = _play(show, _frames(6))
        assert all(r.fresh for r in results) and "frames_between" not in show.stats.counters
    finally:
        show.close()


def test_beside_another_workers_inference_a_frame_is_inferred_not_dropped(tmp_path: Path) -> None:
    """Two workers: while one has a frame in the model, a glide on the other could only be dropped (its
    picture would be older than the one coming), so that frame is inferred instead."""
    show = _show(tmp_path, 2)
    try:
        frames = _frames(3)
        assert _play(show, frames[:1])[0].fresh
        show.workers.let_through(frames[1].t_capture)  # the other worker has frame 1 in the model now
        result = _play(show, frames[2:])[0]
        assert result is not None and result.fresh
        assert "frames_between" not in show.stats.counters
    finally:
        show.close()


def _hold_the_lane(show: Show) -> tuple[threading.Event, list[np.ndarray]]:
    """The model lane started, the model's runs held until the returned event is set (the real session runs
    then); the list gets each picture the model paints."""
    model = show.slot.model
    go, raws, real = threading.Event(), [], model.infer

    def held(x: np.ndarray) -> np.ndarray:
        assert go.wait(10)
        raws.append(real(x))
        return raws[-1]

    show.workers.start_lane()
    model.infer = held
    return go, raws


def _until(what, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not what() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert what()


def test_with_the_lane_no_frame_waits_for_the_model_and_its_picture_is_glided_in(tmp_path: Path) -> None:
    """The model on every 3rd frame, painting on its lane: the frame it paints is shown at once (it glides
    the last picture), as are the frames that come while the model is busy; when the picture is done, the
    next frame glides towards it."""
    show = _show(tmp_path, 3)
    try:
        frames = _frames(6)
        first = _play(show, frames[:3])  # the first picture is painted in line: nothing to glide yet
        assert [r.fresh for r in first] == [True, False, False]
        go, raws = _hold_the_lane(show)
        due, beside = _play(show, frames[3:5])  # frame 3 is due: handed to the lane, shown now
        assert not raws, "the frames were shown while the model was still held"
        assert [r.frame for r in (due, beside)] == frames[3:5]
        assert not due.fresh and not beside.fresh
        assert due.t_model == beside.t_model == frames[0].t_capture
        go.set()
        _until(lambda: show.stats.counters["frames_inferred"] == 2)
        after = _play(show, frames[5:6])[0]
        assert after.t_model == frames[3].t_capture, "the lane's picture is glided in"
        a = float(show.store.snapshot()["post/output_lerp"])
        shown, raw = beside.layers.output.astype(np.float32), raws[0].astype(np.float32)
        assert np.abs(after.layers.output.astype(np.float32) - (shown * a + raw * (1 - a))).max() <= 1.0
        assert show.stats.counters["frames_between"] == 5
    finally:
        show.close()


def test_a_frame_due_while_the_lane_is_busy_glides_and_the_next_is_due(tmp_path: Path) -> None:
    show = _show(tmp_path, 2)
    try:
        frames = _frames(6)
        assert [r.fresh for r in _play(show, frames[:2])] == [True, False]
        go, raws = _hold_the_lane(show)
        held = _play(show, frames[2:5])  # 2 to the lane; 3 between; 4 due, but the lane is busy
        assert not raws and [r.t_model for r in held] == [frames[0].t_capture] * 3
        go.set()
        _until(lambda: show.stats.counters["frames_inferred"] == 2)
        _play(show, frames[5:6])  # due, the lane free: painted
        _until(lambda: show.stats.counters["frames_inferred"] == 3)
        assert len(raws) == 2
    finally:
        show.close()
