"""Folders of folders wherever footage or pictures go in: segment writes a mask per picture under the same
relative path, and training from target pictures finds them in subfolders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from installation.cli import main
from installation.training.readers import TargetReader
from installation.vision.preprocess import Chain

GREEN = (0, 177, 64)


def figure(path: Path, x: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((48, 64, 3), np.uint8)
    img[:] = GREEN
    cv2.circle(img, (x, 24), 10, (200, 60, 40), -1)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def test_segment_a_folder_of_folders(tmp_path: Path, capsys) -> None:
    figure(tmp_path / "in" / "anna" / "a.png", 20)
    figure(tmp_path / "in" / "bob" / "day2" / "a.png", 44)
    (tmp_path / "in" / "bob" / "notes.txt").write_text("not a picture")
    assert main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "masks"), "--mode", "chroma"]) == 0
    out = capsys.readouterr().out
    assert "segment: 2 pictures in 2 folders" in out
    masks = sorted(p.relative_to(tmp_path / "masks").as_posix() for p in (tmp_path / "masks").rglob("*.png"))
    assert masks == ["anna/a.png", "bob/day2/a.png"]
    m = cv2.imread(str(tmp_path / "masks" / "bob" / "day2" / "a.png"), cv2.IMREAD_GRAYSCALE)
    assert m[24, 44] > 200 and m[24, 10] < 50  # the figure where it was drawn, the backdrop not


def test_segment_an_empty_folder_of_folders_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "in" / "anna").mkdir(parents=True)
    assert main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "masks"), "--mode", "chroma"]) == 2
    assert "no images in this folder or its subfolders" in capsys.readouterr().err


def test_target_pictures_in_subfolders(tmp_path: Path) -> None:
    for i, sub in enumerate(("sea", "sea/storm", "sky")):
        figure(tmp_path / "targets" / sub / f"p{i}.png", 20 + 10 * i)
    reader = TargetReader(tmp_path / "targets", Chain.from_spec("grey_blur_downscale", 32), augment=False)
    assert [f.relative_to(tmp_path / "targets").as_posix() for f in reader.files] == [
        "sea/p0.png", "sea/storm/p1.png", "sky/p2.png"]
