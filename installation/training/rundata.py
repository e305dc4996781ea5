"""The data a training run learns from (`open_run_data`): a built dataset of pairs or a folder of target
pictures opened for training, the held-out split, the fixed samples each epoch's grid shows, the
preprocessing chain and the picture size, and what the checkpoint records of the dataset. Every fault is
a UserError naming the dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from installation.core.errors import UserError
from installation.training.config import TrainConfig
from installation.training.dataset import DatasetInfo, read_dataset
from installation.training.readers import PairReader, TargetReader
from installation.vision.preprocess import Chain, ChainError


@dataclass
class RunData:
    data: PairReader | TargetReader  # the training split, augmented
    val: PairReader | TargetReader | None  # the held-out split (pairs only)
    fixed: dict[str, torch.Tensor]  # "A" and "B" of the samples in each epoch's grid
    chain: Chain
    size: int
    meta: dict[str, Any]  # the checkpoint's "dataset"
    info: DatasetInfo | None  # a built dataset's description; None for target pictures


def open_run_data(cfg: TrainConfig, resume: dict[str, Any] | None, progress: bool) -> RunData:
    """The run's data; a resumed run of target pictures keeps the chain it was trained with."""
    info: DatasetInfo | None = None
    val: PairReader | TargetReader | None = None
    data: PairReader | TargetReader
    if cfg.from_targets:
        size = cfg.size or 256
        try:
            chain = Chain.from_spec(resume["chain"] if resume else cfg.chain, size)
        except ChainError as e:
            raise UserError(e.message, key=f"chain: {e.path}") from None
        data = TargetReader(cfg.dataset, chain, True, cfg.seed, progress=progress, repeat=cfg.repeat)
        fixed = TargetReader(cfg.dataset, chain, False, cfg.seed)
        items: list[tuple[PairReader | TargetReader, int]] = [
            (fixed, i) for i in spread(len(fixed), min(cfg.samples, len(fixed)))]
        meta: dict[str, Any] = {"path": str(cfg.dataset), "kind": "targets", "images": len(data.images)}
    else:
        info = read_dataset(cfg.dataset)
        if cfg.size and cfg.size != info.size:
            raise UserError(f"the dataset was built at {info.size}x{info.size}", file=info.path, key="size",
                            expected=f"--size {info.size}, or rebuild it with --size {cfg.size}")
        size, chain = info.size, info.chain
        data = PairReader(info, "train", True, cfg.seed, progress=progress, repeat=cfg.repeat)
        if len(data) == 0:
            raise UserError("no training pairs", file=info.folder / "train",
                            expected="pair images made by `installation dataset build`")
        held = PairReader(info, "val", False, cfg.seed) if (info.folder / "val").is_dir() else None
        val = held
        meta = {"path": str(info.folder), "kind": "pairs", "layout": info.layout,
                **({"segment": info.meta["segment"]} if "segment" in info.meta else {}),
                **{f"split_{k}": v for k, v in info.split.items()}, **{k: v for k, v in info.counts.items()}}
        # the grid's rows come from every source (each take, each person): held-out pairs where a source
        # has some, else its training pairs unaugmented
        shown = [held] if held is not None and len(held) else []
        items = list(spread_over_sources([*shown, PairReader(info, "train", False)], cfg.samples))
    samples = {k: torch.from_numpy(np.stack([reader[i][k] for reader, i in items])) for k in ("A", "B")}
    return RunData(data, val, samples, chain, size, meta, info)


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), the first and the last included."""
    if n == 0 or k <= 0:
        return []
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def source_of(path: Path) -> str:
    """The source a pair came from: the builder names pairs SS_label_NNNNNN.png, SS its source's number."""
    return path.stem.split("_", 1)[0]


def spread_over_sources(readers: list[PairReader], rows: int,
                        most: int = 8) -> list[tuple[PairReader | TargetReader, int]]:
    """`rows` samples (more, up to `most`, when there are more sources than rows), taken in turn from each
    source and spread over its pairs, those of the first readers (held out) first."""
    by_source: dict[str, list[tuple[PairReader | TargetReader, int]]] = {}
    for reader in readers:
        for i, f in enumerate(reader.files):
            by_source.setdefault(source_of(f), []).append((reader, i))
    groups = [by_source[k] for k in sorted(by_source)]
    want = min(max(rows, min(len(groups), most)), sum(len(g) for g in groups))
    per = [0] * len(groups)
    while sum(per) < want:  # round-robin: one more from each source that still has pairs
        for g, pairs in enumerate(groups):
            if sum(per) < want and per[g] < len(pairs):
                per[g] += 1
    return [pairs[j] for pairs, k in zip(groups, per, strict=True) for j in spread(len(pairs), k)]
