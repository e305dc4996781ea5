"""The generator judged while it trains, on pictures it does not learn from: the grid of input | output |
target for the fixed samples (`sample_grid`, the epoch's PNG), their checkerboard figure
(`sample_spike`), and the L1 distance on the held-out split (`val_l1`). Each runs in eval mode, as the
export will, and puts the generator back in training mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from installation.vision.preprocess import from_tensor


@torch.no_grad()
def sample_grid(G: nn.Module, fixed: dict[str, torch.Tensor], device: torch.device) -> np.ndarray:
    """Rows of input | output | target for the fixed samples, in eval mode as the export will run."""
    G.eval()
    fake = G(fixed["A"].to(device)).float().cpu().numpy()
    G.train()
    rows = [np.concatenate([from_tensor(fixed["A"][i].numpy()), from_tensor(fake[i]),
                            from_tensor(fixed["B"][i].numpy())], axis=1) for i in range(len(fake))]
    return np.concatenate(rows, axis=0)


@torch.no_grad()
def sample_spike(G: nn.Module, fixed: dict[str, torch.Tensor], device: torch.device) -> float:
    """The checkerboard figure (quality.spike_figure) of the fixed samples' outputs, the worst of them:
    a grid that training grows shows in losses.jsonl epochs before anyone exports the model."""
    from .quality import spike_figure

    G.eval()
    fake = G(fixed["A"].to(device)).float().cpu().numpy()
    G.train()
    return max(spike_figure(from_tensor(f)) for f in fake)


@torch.no_grad()
def val_l1(G: nn.Module, val: Any, batch_size: int, device: torch.device) -> float | None:
    """The mean L1 distance of the generator's outputs to the held-out targets; None without a val split."""
    if val is None or len(val) == 0:
        return None
    G.eval()
    total, n = 0.0, 0
    for batch in DataLoader(val, batch_size=batch_size):
        fake = G(batch["A"].to(device)).float()
        total += float((fake - batch["B"].to(device)).abs().mean()) * len(fake)
        n += len(fake)
    G.train()
    return total / n
