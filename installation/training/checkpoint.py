"""The trainer's checkpoint file: its format and version, reading one back checked (`load_checkpoint`,
`check_checkpoint`, every fault a UserError naming the file), the generator it describes
(`build_generator`), weights that must fit (`load_weights`), the atomic write, and the versions stamped
into it. Shared by the trainer (save, resume) and the exporter (read)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from installation import __version__
from installation.core.errors import UserError
from installation.core.files import atomic_path
from installation.training.networks import define_G

CHECKPOINT_FORMAT = "installation-pix2pix"
CHECKPOINT_VERSION = 1

def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint of this trainer, checked. Raises UserError naming the file and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise UserError("no such checkpoint", file=path, expected="runs/NAME/latest.pt")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise UserError(f"not a readable PyTorch checkpoint: {str(e).splitlines()[0][:200]}", file=path) from None
    return check_checkpoint(ckpt, path)


def check_checkpoint(ckpt: Any, path: str | Path) -> dict[str, Any]:
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise UserError("not a checkpoint of `installation train`", file=path,
                        expected=f'a dict with format "{CHECKPOINT_FORMAT}" (a pix2pix latest_net_G.pth '
                                 "goes to `installation export`)")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise UserError(f"checkpoint version {ckpt.get('version')!r}", file=path,
                        expected=f"version {CHECKPOINT_VERSION}")
    for key in ("arch", "disc", "G", "chain", "size", "config", "epoch"):
        if key not in ckpt:
            raise UserError(f"the checkpoint has no {key!r}", file=path, key=key)
    return ckpt


def build_generator(ckpt: dict[str, Any], file: str | Path) -> nn.Module:
    """The checkpoint's generator with its weights. Raises UserError when they don't fit its architecture."""
    try:
        G = define_G(**ckpt["arch"])
    except (TypeError, ValueError) as e:
        raise UserError(f"unknown architecture {ckpt['arch']!r}: {e}", file=file, key="arch") from None
    load_weights(G, ckpt["G"], file, what=f"a {ckpt['arch'].get('kind')} generator {ckpt['arch']}")
    return G


def load_weights(net: nn.Module, state: dict[str, torch.Tensor], file: str | Path, what: str) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()][1:4]
        raise UserError("the weights don't fit the architecture: " + " ".join(lines)[:400], file=file,
                        expected=f"the weights of {what}") from None


def save_atomic(obj: Any, path: Path) -> None:
    """Write beside, then rename: a crash or a second Ctrl-C mid-write leaves the old file whole."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def versions() -> dict[str, str]:
    import platform

    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
    return {"installation": str(__version__), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}
