"""The governor's last step, the model on every Nth frame: the frames between keep their own camera
picture and carry the model's last picture on through the card's output smoothing (real ONNX Runtime
session, real chain; the workers driven by hand, frame by frame)."""

from __future__ import annotations

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
