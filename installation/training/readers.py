"""Reading a dataset for training: the pairs of a built dataset's split (`PairReader`) and target pictures
alone with their input made on the fly by the chain (`TargetReader`), as float32 CHW arrays in [-1, 1],
with pix2pix's jitter (`jitter_box`, `scale_crop`) seeded by (seed, epoch, index). No torch here: the
trainer wraps these readers in its DataLoader."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.progress import progress as progress_bar
from installation.training.dataset import (
    DatasetInfo,
    geometric_chain,
    list_images,
    needs_mask,
    read_image,
    split_pair,
)
from installation.vision.preprocess import Chain, to_tensor


def jitter_box(rng: np.random.Generator, h: int, w: int, size: int,
               scale: tuple[float, float] = (1.0, 1.3)) -> tuple[float, int, int]:
    """Random zoom and crop position: (factor that makes the short side size*zoom, y, x of the crop)."""
    zoom = rng.uniform(*scale)
    f = size * zoom / min(h, w)
    sh, sw = max(size, round(h * f)), max(size, round(w * f))
    return f, int(rng.integers(0, sh - size + 1)), int(rng.integers(0, sw - size + 1))


def scale_crop(img: np.ndarray, f: float, y: int, x: int, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    sh, sw = max(size, round(h * f)), max(size, round(w * f))
    if (sh, sw) != (h, w):
        img = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA if sh < h else cv2.INTER_CUBIC)
    return img[y:y + size, x:x + size]


class PairReader:
    """The pairs of one split of a built dataset, as float32 CHW arrays in [-1, 1].

    Every file is checked on opening, so a wrong-sized pair fails before training starts. With
    `augment`, each pair gets pix2pix's jitter, the same for both halves: zoom 100-130 %, random crop,
    random flip. Randomness comes from (seed, epoch, index), so any worker or a resumed run sees the
    same pictures. `repeat` shows each pair that many times an epoch, each time jittered anew.
    """

    def __init__(self, info: DatasetInfo, split: str = "train", augment: bool = True, seed: int = 0,
                 progress: bool = False, repeat: int = 1) -> None:
        self.info, self.augment, self.seed, self.epoch, self.repeat = info, augment, seed, 0, max(1, repeat)
        folder = info.folder / split
        self.files = list_images(folder) if folder.is_dir() else []
        s = info.size
        for f in progress_bar(self.files, total=len(self.files), desc=f"check {split}", unit="pair", enabled=progress):
            img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise UserError("cannot read this pair image", file=f, expected="a PNG or JPEG")
            if img.shape[:2] != (s, 2 * s):
                raise UserError(f"the pair is {img.shape[1]}x{img.shape[0]}", file=f,
                                expected=f"{2 * s}x{s}: two {s}x{s} halves side by side, as dataset.toml says")

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) as uint8 RGB, augmented when asked."""
        a, b = split_pair(read_image(self.files[i % len(self.files)]), self.info.layout)
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            s = self.info.size
            f, y, x = jitter_box(rng, s, s, s)
            a, b = scale_crop(a, f, y, x, s), scale_crop(b, f, y, x, s)
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
        return np.ascontiguousarray(a), np.ascontiguousarray(b)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        a, b = self.pair(i)
        return {"A": to_tensor(a)[0], "B": to_tensor(b)[0], "index": np.int64(i)}


class TargetReader:
    """Training from target pictures alone, as Learning to See's later installation did: each picture
    is zoomed 100-130 %, cropped and flipped at random, its brightness jittered, and the model's input
    is made from it on the fly by the preprocessing chain. Without `augment`: a centre crop, no jitter."""

    def __init__(self, folder: str | Path, chain: Chain, augment: bool = True, seed: int = 0,
                 brightness: float = 0.25, progress: bool = False, repeat: int = 1) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise UserError("no such folder of target pictures", file=folder, expected="a folder of images")
        if needs_mask(chain):
            raise UserError("the chain uses a person mask, which plain target pictures don't have", file=folder,
                            expected="a chain without a 'mask' step, or a dataset built with --segment")
        self.chain, self.augment, self.seed, self.brightness, self.epoch = chain, augment, seed, brightness, 0
        self._input_chain, self._target_chain = chain.for_training(), geometric_chain(chain)
        self.repeat = max(1, repeat)  # each picture this many times an epoch, each time cropped anew
        self.files = list_images(folder, recursive=True)  # a folder of folders of pictures too
        self.size = chain.size[0]
        # Target pictures are few and the chain runs per sample: decode once, keep them in memory
        # (scaled so the short side is at most 2x the model's input, plenty for a 130 % zoom).
        self.images = []
        for f in progress_bar(self.files, total=len(self.files), desc="load targets", unit="image", enabled=progress):
            img = read_image(f)
            h, w = img.shape[:2]
            if min(h, w) < self.size // 2:
                raise UserError(f"the picture is {w}x{h}", file=f,
                                expected=f"at least {self.size // 2} pixels on the short side")
            k = min(1.0, 2 * self.size / min(h, w))
            if k < 1:
                img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
            self.images.append(img)

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img, s = self.images[i % len(self.images)], self.size
        h, w = img.shape[:2]
        if self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            f, y, x = jitter_box(rng, h, w, s)
            crop = scale_crop(img, f, y, x, s)
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            gain = 1.0 + rng.uniform(-self.brightness, self.brightness)
            lit = np.clip(crop.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        else:
            f = s / min(h, w)
            crop = scale_crop(img, f, (max(s, round(h * f)) - s) // 2, (max(s, round(w * f)) - s) // 2, s)
            lit = crop
        a, _ = self._input_chain.apply(np.ascontiguousarray(lit), None)
        b, _ = self._target_chain.apply(np.ascontiguousarray(crop), None)
        return a, b

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        a, b = self.pair(i)
        return {"A": to_tensor(a)[0], "B": to_tensor(b)[0], "index": np.int64(i)}
