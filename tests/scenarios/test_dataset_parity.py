"""Training and show see the same input: a dataset built with a segmenter through the real command holds,
as each pair's A half, exactly what the live chain makes of that source frame with the same mask."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cv2
import numpy as np

from tests.scenarios.conftest import frames_of, run_cli

CHROMA_GREEN = (0, 177, 64)  # RGB: the key colour the chroma segmenter uses by default


def green_screen_clip(path: Path, n: int = 12, w: int = 320, h: int = 180) -> Path:
    """A figure walking on the left of a green backdrop: inside the live chain's centre square but off
    its centre, so a crop to the person's box would see a different picture."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = CHROMA_GREEN
        cx = 95 + 3 * i
        cv2.ellipse(img, (cx, 118), (22, 50), 0, 0, 360, (200, 90, 60), -1)
        cv2.circle(img, (cx, 52), 16, (230, 180, 150), -1)
        cv2.rectangle(img, (cx - 10, 100), (cx + 10, 128), (40, 40, 160), -1)
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def live_input(rgb: np.ndarray, spec: list, size: int, segment: str) -> np.ndarray:
    """The model's input as the show makes it: the card's chain through apply_live at the card's values
    (what a show seeds its store with), a fresh chain state, and the segmenter's mask of this frame."""
    from installation.vision.preprocess import Chain, ChainState
    from installation.vision.segment import MaskTreatment, default_values, make_segmenter, segment_frame

    values = default_values(mode=segment, scale=1.0, smooth=0.0)
    seg = make_segmenter(segment, values=values)
    assert seg is not None
    mask = segment_frame(seg, MaskTreatment(), rgb, values)
    chain = Chain.from_spec(spec, size)
    x, _ = chain.apply_live(rgb, chain.param_values(), ChainState(), mask)
    return x


def test_segmented_dataset_input_equals_the_live_chain(tmp_path: Path) -> None:
    clip = green_screen_clip(tmp_path / "walk.mp4")
    ds = tmp_path / "ds"
    r = run_cli(["dataset", "build", clip, "--out", ds, "--segment", "chroma", "--chain", "silhouette_edges",
                 "--size", "64", "--val", "0"], tmp_path)
    assert r.returncode == 0, r.stderr
    card = tomllib.loads((ds / "dataset.toml").read_text())
    frames = frames_of(clip)
    pairs = sorted((ds / "train").glob("00_walk_*.png"))
    assert len(pairs) >= 3, [p.name for p in pairs]
    for path in pairs:
        n = int(path.stem.rsplit("_", 1)[1])  # the source frame's number, as the builder names the pair
        a = cv2.cvtColor(cv2.imread(str(path))[:, :64], cv2.COLOR_BGR2RGB)
        rgb = cv2.cvtColor(frames[n], cv2.COLOR_BGR2RGB)
        x = live_input(rgb, card["preprocess"], card["size"], card["segment"])
        diff = np.abs(a.astype(np.int16) - x.astype(np.int16))
        assert (x > 60).mean() > 0.05, "the live input should show the figure"
        assert diff.mean() < 0.5 and (diff > 32).mean() < 0.002, (
            f"frame {n}: dataset A differs from the live chain's input by {diff.mean():.1f} grey levels "
            f"on average, {(diff > 32).mean():.1%} of pixels by more than 32")
