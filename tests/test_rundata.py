"""The data a training run sees: each epoch's sample rows come from every source (take, person)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from installation.cli import main
from installation.training.rundata import open_run_data, spread
from installation.training.train import TrainConfig

COLOURS = {"anna": (200, 40, 40), "bob": (40, 200, 40), "cleo": (40, 40, 200)}  # one backdrop colour a person


def take(path: Path, rgb: tuple[int, int, int], n: int = 12) -> None:
    """A take: a flat backdrop of the person's colour, a grey disc moving across it (no two frames alike)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(n):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:] = rgb
        cv2.circle(img, (8 + 4 * i, 24), 8, (128, 128, 128), -1)
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()


def test_sample_rows_come_from_every_take(tmp_path: Path) -> None:
    for name, rgb in COLOURS.items():
        take(tmp_path / "takes" / name / "take_001.mp4", rgb, n=24 if name == "anna" else 8)
    ds = tmp_path / "ds"
    # a seeded split that holds back pairs of some takes only: the rows must still show every take
    assert main(["dataset", "build", str(tmp_path / "takes"), "--out", str(ds), "--size", "32", "--chain", "plain",
                 "--val", "0.1"]) == 0
    cfg = TrainConfig(dataset=str(ds), samples=4, out=str(tmp_path / "run"))
    run = open_run_data(cfg, None, progress=False)
    targets = ((run.fixed["B"].numpy() + 1) * 127.5).round()  # rows x 3 x 32 x 32
    assert len(targets) == 4
    backdrop = targets[:, :, 0, 0]  # a corner: the backdrop's colour tells the person
    seen = {name for name, rgb in COLOURS.items() for row in backdrop if np.abs(row - rgb).max() < 24}
    assert seen == set(COLOURS), backdrop


def test_more_sources_than_rows_show_each_up_to_eight(tmp_path: Path) -> None:
    for i in range(6):
        take(tmp_path / "takes" / f"p{i}" / "take_001.mp4", (30 * i, 100, 200 - 30 * i), n=6)
    ds = tmp_path / "ds"
    assert main(["dataset", "build", str(tmp_path / "takes"), "--out", str(ds), "--size", "32", "--chain", "plain",
                 "--val", "0"]) == 0
    run = open_run_data(TrainConfig(dataset=str(ds), samples=4, out=str(tmp_path / "run")), None, progress=False)
    assert len(run.fixed["B"]) == 6


def test_spread_takes_first_and_last() -> None:
    assert spread(10, 3) == [0, 4, 9] or spread(10, 3) == [0, 5, 9]
    assert spread(3, 5) == [0, 1, 2] and spread(5, 1) == [0] and spread(0, 2) == []
