"""Aligned pairs: building them from videos and pictures, and describing them (reading them back for
training is `readers.py`).

A dataset folder, as the well-known pix2pix code reads it, plus a description:

    DIR/dataset.toml     layout, size, the preprocessing chain (full spec), split and counts
    DIR/train/*.png      one image per pair, 2*size wide: input A | target B (layout "AB")
    DIR/val/*.png        the same, held out

The input half is made by the same preprocessing chain the live show runs (`chain.for_training()`),
and the target half by the chain's geometric steps alone (flip, crop, resize), so the two stay
pixel-aligned. No torch here.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
import shutil
import sys
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.core.tomlout import preprocess_tables
from installation.core.tomlout import toml_value as _tv
from installation.vision.preprocess import Chain, ChainError
from installation.vision.stillness import thumbnail

DATASET_FORMAT = "installation-dataset"
DATASET_VERSION = 1
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LAYOUTS = ("AB", "BA")
SEGMENT_MODES = ("none", "chroma", "selfie")

# ---- reading pictures --------------------------------------------------------------------------


def read_image(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB. Raises UserError for a file OpenCV can't decode."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError("cannot read this image (missing, corrupt or not an image)", file=path,
                        expected="a PNG, JPEG or other picture OpenCV decodes")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


MIN_PAIRS = 16  # below this, a few batches an epoch: the model learns the pictures, not the mapping


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The folder's pictures in sorted order; with `recursive`, its subfolders' too (by relative path)."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted((f for f in found if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda f: f.relative_to(folder).parts)
    if not files:
        raise UserError("no images in this folder" + (" or its subfolders" if recursive else ""), file=folder,
                        expected=" ".join(IMAGE_SUFFIXES))
    return files


@dataclass
class FrameSource:
    """One input of the builder: a video, or a sequence of pictures (a folder or a single image)."""

    path: Path
    video: bool
    images: list[Path] = field(default_factory=list)
    label: str = ""  # the name pairs carry: the path under the folder given, or the file's own stem

    @property
    def stem(self) -> str:
        return "".join(c if c.isalnum() or c in "-_" else "_" for c in (self.label or self.path.stem)) or "src"

    def count(self, every: int) -> int | None:
        if not self.video:
            return len(self.images)
        cap = cv2.VideoCapture(str(self.path))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return (n + every - 1) // every if n > 0 else None

    def frames(self, every: int) -> Iterator[tuple[int, np.ndarray]]:
        """(frame number, RGB picture); videos yield every Nth frame, picture sequences every picture."""
        if not self.video:
            for i, f in enumerate(self.images):
                yield i, read_image(f)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, bgr = cap.read() if cap.isOpened() else (False, None)
            if not ok or bgr is None:
                raise UnreadableVideo("cannot read this video (corrupt, empty or an unknown codec)", file=self.path,
                                      expected="a video file OpenCV can decode (mp4, mov, avi, ...)")
            i = 0
            while ok and bgr is not None:
                if i % every == 0:
                    yield i, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                ok, bgr = cap.read()
                i += 1
        finally:
            cap.release()


class UnreadableVideo(UserError):
    """A video OpenCV can't open or decode a first frame of: the builder skips it and says so."""


def _label(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("") if path != root else Path(root.name)
    return "_".join(rel.parts)


def _folder_sources(root: Path) -> list[FrameSource]:
    """A folder and its subfolders, recursively, in sorted order: each video a source, and the pictures
    of each folder one source (a folder of stills is one take)."""
    files = sorted((f for f in root.rglob("*") if f.is_file() and not any(
        part.startswith(".") for part in f.relative_to(root).parts)), key=lambda f: f.relative_to(root).parts)
    sources: list[FrameSource] = []
    pictures: dict[Path, list[Path]] = {}
    for f in files:
        suffix = f.suffix.lower()
        if suffix in VIDEO_SUFFIXES:
            sources.append(FrameSource(f, video=True, label=_label(f, root)))
        elif suffix in IMAGE_SUFFIXES:
            pictures.setdefault(f.parent, []).append(f)
    for folder, images in pictures.items():
        sources.append(FrameSource(folder, video=False, images=images, label=_label(folder, root)))
    sources.sort(key=lambda s: s.path.relative_to(root).parts if s.path != root else ())
    if not sources:
        subfolders = sum(1 for d in root.rglob("*") if d.is_dir())
        raise UserError(f"no images or videos in this folder or its {subfolders} subfolder(s)", file=root,
                        expected=" ".join(IMAGE_SUFFIXES + VIDEO_SUFFIXES) + ", at any depth")
    return sources


def find_sources(inputs: Sequence[str | Path]) -> list[FrameSource]:
    """Videos, image files and folders (of pictures and/or videos, searched with their subfolders, in
    sorted order) -> the builder's sources."""
    sources: list[FrameSource] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise UserError("no such file or folder", file=p, expected="a video, an image or a folder of them")
        if p.is_dir():
            sources += _folder_sources(p)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            sources.append(FrameSource(p, video=False, images=[p]))
        else:  # anything else is tried as a video; frames() says so if OpenCV can't decode it
            sources.append(FrameSource(p, video=True))
    return sources


def describe_sources(sources: Sequence[FrameSource]) -> str:
    """What was found, in words: "5 videos and 12 pictures in 3 folders"."""
    videos = sum(s.video for s in sources)
    pictures = sum(len(s.images) for s in sources if not s.video)
    folders = len({s.path.parent if s.video else s.path for s in sources})
    parts = [f"{videos} video{'s' * (videos != 1)}"] if videos or not pictures else []
    if pictures:
        parts.append(f"{pictures} picture{'s' * (pictures != 1)}")
    return f"{' and '.join(parts)} in {folders} folder{'s' * (folders != 1)}"


# ---- the pieces of a pair ----------------------------------------------------------------------


def person_box(mask: np.ndarray, pad: float = 0.1, min_area: float = 0.005) -> tuple[int, int, int, int] | None:
    """A square (y0, x0, y1, x1) around the person (mask > 0.5), padded by `pad` of its size on each side
    and kept inside the frame; None when the person covers less than `min_area` of the frame."""
    h, w = mask.shape[:2]
    person = mask > 0.5
    if person.mean() < min_area:
        return None
    ys, xs = np.nonzero(person)
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = round(max(by1 - by0, bx1 - bx0) * (1 + 2 * pad))
    side = min(side, h, w)
    cy, cx = (by0 + by1) / 2, (bx0 + bx1) / 2
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    return y0, x0, y0 + side, x0 + side


def geometric_chain(chain: Chain) -> Chain:
    """The chain's steps that move pixels (flip, crop, resize): what the target half gets, so it stays
    aligned with the input half."""
    return Chain(tuple(s for s in chain.for_training().steps if s.definition.geometric), chain.size)


def needs_mask(chain: Chain) -> bool:
    return any(s.kind == "mask" for s in chain.for_training().steps)


def make_pair(rgb: np.ndarray, mask: np.ndarray | None, chain: Chain) -> tuple[np.ndarray, np.ndarray]:
    """(model input, target), both size x size RGB uint8, from one picture (and its person mask)."""
    model_input, _ = chain.for_training().apply(rgb, mask)
    target, _ = geometric_chain(chain).apply(rgb, None)
    return model_input, target


def join_pair(a: np.ndarray, b: np.ndarray, layout: str = "AB") -> np.ndarray:
    """One side-by-side image: input A left and target B right ("AB"), or the other way ("BA")."""
    return np.concatenate([a, b] if layout == "AB" else [b, a], axis=1)


def split_pair(img: np.ndarray, layout: str = "AB") -> tuple[np.ndarray, np.ndarray]:
    """(A, B) from a side-by-side image."""
    w = img.shape[1] // 2
    left, right = img[:, :w], img[:, w:2 * w]
    return (left, right) if layout == "AB" else (right, left)


# ---- dataset.toml ------------------------------------------------------------------------------


@dataclass
class DatasetInfo:
    """What dataset.toml records: enough for the trainer to need no flag repeated."""

    folder: Path
    layout: str
    size: int
    chain: Chain
    split: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # created, command, sources, segment, every

    @property
    def path(self) -> Path:
        return self.folder / "dataset.toml"

    def to_toml(self) -> str:
        lines = [f"format = {_tv(DATASET_FORMAT)}", f"version = {DATASET_VERSION}", f"layout = {_tv(self.layout)}",
                 f"size = {self.size}"]
        lines += [f"{k} = {_tv(v)}" for k, v in self.meta.items()]
        for name, table in (("split", self.split), ("counts", self.counts)):
            lines += ["", f"[{name}]", *[f"{k} = {_tv(v)}" for k, v in table.items()]]
        lines += ["", *preprocess_tables(self.chain.to_spec())]
        return "\n".join(lines) + "\n"

    def save(self) -> Path:
        self.path.write_text(self.to_toml())
        return self.path




def read_dataset(folder: str | Path) -> DatasetInfo:
    """Read and check DIR/dataset.toml. Raises UserError naming the file and the key."""
    folder = Path(folder)
    path = folder / "dataset.toml"
    if not folder.is_dir():
        raise UserError("no such dataset folder", file=folder, expected="a folder made by `installation dataset build`")
    if not path.is_file():
        raise UserError("no dataset.toml in this folder", file=folder,
                        expected="a folder made by `installation dataset build` (or use --from-targets "
                                 "for a folder of target pictures)")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"can't read it: {e}", file=path) from None
    if data.get("format") != DATASET_FORMAT or data.get("version") != DATASET_VERSION:
        raise UserError(f"format {data.get('format')!r} version {data.get('version')!r}", file=path, key="format",
                        expected=f'format = "{DATASET_FORMAT}", version = {DATASET_VERSION}')
    layout = data.get("layout")
    if layout not in LAYOUTS:
        raise UserError(f"bad layout {layout!r}", file=path, key="layout", expected='"AB" or "BA"')
    size = data.get("size")
    if not isinstance(size, int) or size < 8:
        raise UserError(f"bad size {size!r}", file=path, key="size", expected="an integer side in pixels")
    try:
        chain = Chain.from_spec(data.get("preprocess", "plain"), size)
    except ChainError as e:
        raise UserError(e.message, file=path, key=e.path) from None
    meta = {k: v for k, v in data.items() if k not in ("format", "version", "layout", "size", "split", "counts",
                                                       "preprocess")}
    return DatasetInfo(folder, layout, size, chain, dict(data.get("split", {})), dict(data.get("counts", {})), meta)


# ---- the builder -------------------------------------------------------------------------------


@dataclass
class BuildOptions:
    size: int = 256  # side of the model's input, in pixels
    every: int = 1  # take every Nth video frame
    segment: str = "none"  # who finds the person: none, chroma (green screen) or selfie (MediaPipe)
    layout: str = "AB"  # input left ("AB", pix2pix) or target left ("BA", some workshop trainers)
    val: float = 0.1  # fraction held out for validation
    duplicate_threshold: float = 2.0  # mean grey-level difference of 32x32 thumbnails below which a frame repeats
    seed: int = 0  # the train/val split's shuffle
    crop: str | None = None  # the chain's framing: "centre" (a square of the camera), "fit" (all of it); None: as is


def with_crop(chain: Chain, crop: str) -> Chain:
    """The chain with its crop step framing `crop` ("centre", "fit": letterbox, "none": stretch)."""
    spec = chain.to_spec()
    if not any(st["step"] == "crop" for st in spec):
        raise ChainError("preprocess", "the chain has no crop step to set")
    steps = [dict(st, crop=crop) if st["step"] == "crop" else st for st in spec]
    return Chain.from_spec(steps, chain.size)


def build_dataset(inputs: Sequence[str | Path], out: str | Path, chain_spec: Any = "edges",
                  opts: BuildOptions | None = None, models_dir: Path | None = None,
                  command: str | None = None, progress: bool = True) -> DatasetInfo:
    """Sample frames from videos and pictures, skip those without a person (with a segmenter), and pair
    each whole frame through the chain into an aligned dataset."""

    opts = opts or BuildOptions()
    if opts.layout not in LAYOUTS:
        raise UserError(f"bad layout {opts.layout!r}", key="--layout", expected="AB or BA")
    if opts.segment not in SEGMENT_MODES:
        raise UserError(f"bad segmenter {opts.segment!r}", key="--segment", expected=", ".join(SEGMENT_MODES))
    if opts.every < 1 or opts.size < 16 or not 0 <= opts.val < 1:
        raise UserError(f"every={opts.every}, size={opts.size}, val={opts.val}", key="options",
                        expected="--every >= 1, --size >= 16, 0 <= --val < 1")
    try:
        chain = Chain.from_spec(chain_spec, opts.size)
        if opts.crop is not None:
            chain = with_crop(chain, opts.crop)
    except ChainError as e:
        raise UserError(e.message, key=e.path) from None
    if needs_mask(chain) and opts.segment == "none":
        raise UserError("this chain uses the person mask, so it needs a segmenter", key="--segment",
                        expected="--segment chroma or --segment selfie")
    sources = find_sources(inputs)
    print(f"dataset: {describe_sources(sources)}", flush=True)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise UserError("the output folder is not empty", file=out, expected="a new or empty folder")
    existed = out.exists()
    try:
        return _build(sources, out, chain, opts, models_dir, command, progress)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # half a dataset would only be in the way of the next try
        if existed:
            out.mkdir()
        raise


def _build(sources: list[FrameSource], out: Path, chain: Chain, opts: BuildOptions, models_dir: Path | None,
           command: str | None, progress: bool) -> DatasetInfo:
    from installation.core.progress import progress as progress_bar

    train_dir = out / "train"
    train_dir.mkdir(parents=True, exist_ok=True)

    segmenter, treatment, values = _segmenter(opts.segment, models_dir)
    counts = {"frames_read": 0, "duplicates_skipped": 0, "no_person_skipped": 0, "pairs": 0}
    names: list[str] = []
    skipped: list[str] = []
    try:
        for k, src in enumerate(sources):
            last: np.ndarray | None = None
            bar = progress_bar(src.frames(opts.every), total=src.count(opts.every), unit="frame",
                               desc=f"dataset {src.stem}", enabled=progress)
            try:
                for n, rgb in bar:
                    counts["frames_read"] += 1
                    thumb = thumbnail(rgb)
                    if last is not None and float(np.abs(thumb - last).mean()) < opts.duplicate_threshold:
                        counts["duplicates_skipped"] += 1
                        continue
                    last = thumb
                    mask = None
                    if segmenter is not None:
                        from installation.vision.segment import segment_frame

                        treatment.reset()  # sampled frames are far apart: no temporal smoothing between them
                        mask = segment_frame(segmenter, treatment, rgb, values)
                        # The box only decides whether someone is there. Cropping to it would show the model
                        # a zoomed person it never sees live, where the chain frames the whole camera picture.
                        if person_box(mask) is None:
                            counts["no_person_skipped"] += 1
                            continue
                    a, b = make_pair(rgb, mask, chain)
                    name = f"{k:02d}_{src.stem}_{n:06d}.png"
                    path = train_dir / name
                    if not cv2.imwrite(str(path), cv2.cvtColor(join_pair(a, b, opts.layout), cv2.COLOR_RGB2BGR)):
                        raise UserError("cannot write the pair", file=path)
                    names.append(name)
            except UnreadableVideo as e:
                print(f"dataset: skipped {src.path}: {e.message}", file=sys.stderr, flush=True)
                skipped.append(str(src.path))
    finally:
        if segmenter is not None:
            segmenter.close()
    if not names:
        raise UserError(f"no pairs were made ({counts['frames_read']} frames read, "
                        f"{counts['duplicates_skipped']} duplicates, {counts['no_person_skipped']} without a person"
                        + (f", {len(skipped)} unreadable video(s) skipped" if skipped else "") + ")",
                        file=", ".join(str(s.path) for s in sources),
                        expected="frames with a person in them (check --segment)")

    # A seeded shuffle picks the held-out pairs: reproducible, and spread over every source.
    n_val = round(len(names) * opts.val) if len(names) > 1 else 0
    if opts.val > 0 and len(names) > 1:
        n_val = max(1, n_val)
    val_names = set(np.random.default_rng(opts.seed).permutation(len(names))[:n_val].tolist())
    if n_val:
        (out / "val").mkdir(exist_ok=True)
    for i in sorted(val_names):
        os.replace(train_dir / names[i], out / "val" / names[i])
    counts["pairs"] = len(names)
    if len(names) < MIN_PAIRS:
        print(f"dataset: only {len(names)} pairs; training wants at least {MIN_PAIRS} (more or longer takes, a "
              "smaller --every), or --set repeat=N to show each pair N times an epoch", file=sys.stderr, flush=True)
    info = DatasetInfo(
        out, opts.layout, opts.size, chain,
        split={"val_fraction": opts.val, "seed": opts.seed, "train": len(names) - n_val, "val": n_val},
        counts=counts,
        meta={"created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "command": command or shlex.join(["installation", *sys.argv[1:]]),
              "sources": [str(s.path) for s in sources], "segment": opts.segment, "every": opts.every,
              **({"skipped": skipped} if skipped else {})})
    info.save()
    return info


def _segmenter(mode: str, models_dir: Path | None) -> tuple[Any, Any, dict[str, Any]]:
    if mode == "none":
        return None, None, {}
    from installation.vision.segment import DEFAULT_MODELS_DIR, MaskTreatment, default_values, make_segmenter

    # Offline there is time for full resolution; temporal smoothing would smear unrelated samples.
    values = default_values(mode=mode, scale=1.0, smooth=0.0)
    return make_segmenter(mode, models_dir or DEFAULT_MODELS_DIR, values), MaskTreatment(), values
