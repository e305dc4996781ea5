"""The data a training run learns from (`open_run_data`): a built dataset of pairs or a folder of target
pictures opened for training, the held-out split, the fixed samples each epoch's grid shows, the
preprocessing chain and the picture size, and what the checkpoint records of the dataset. Every fault is
a UserError naming the dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from installation.core.errors import UserError
from installation.training.dataset import DatasetInfo, read_dataset
from installation.training.readers import PairReader, TargetReader
from installation.vision.preprocess import Chain, ChainError

if TYPE_CHECKING:
    from installation.training.train import TrainConfig


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
        fixed: PairReader | TargetReader = TargetReader(cfg.dataset, chain, False, cfg.seed)
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
        val = PairReader(info, "val", False, cfg.seed) if (info.folder / "val").is_dir() else None
        fixed = val if val is not None and len(val) else PairReader(info, "train", False)
        meta = {"path": str(info.folder), "kind": "pairs", "layout": info.layout,
                **{f"split_{k}": v for k, v in info.split.items()}, **{k: v for k, v in info.counts.items()}}
    picks = range(min(cfg.samples, len(fixed)))
    samples = {k: torch.from_numpy(np.stack([fixed[i][k] for i in picks])) for k in ("A", "B")}
    return RunData(data, val, samples, chain, size, meta, info)
