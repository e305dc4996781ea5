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
PICTURE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

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


def dataset_fingerprint(folder: str | Path) -> list[list[Any]]:
    """What a run learns from, as [relative path, bytes, content hash] of every picture under its dataset
    folder: a resumed run checks it still learns from the same pictures (a moved folder of them passes)."""
    import hashlib

    root = Path(folder)
    if not root.is_dir():
        return []
    return [[p.relative_to(root).as_posix(), p.stat().st_size,
             hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest()]
            for p in sorted(root.rglob("*")) if p.suffix.lower() in PICTURE_EXT and p.is_file()]


def same_data(ckpt: dict[str, Any], fingerprint: list[list[Any]], file: str | Path, folder: str | Path) -> None:
    """Refuse to go on with other pictures than the checkpoint's run learnt from (a UserError saying what differs)."""
    before = {name: list(rest) for name, *rest in ckpt.get("dataset_fingerprint") or []}
    if not before:
        return  # a checkpoint from before fingerprints: nothing to compare
    now = {name: list(rest) for name, *rest in fingerprint}
    gone = sorted(set(before) - set(now))
    new = sorted(set(now) - set(before))
    # a fingerprint of an older trainer has no hash: compare what both have
    changed = sorted(n for n in set(before) & set(now) if before[n] != now[n][:len(before[n])])
    if gone or new or changed:
        parts = [f"{what}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                 for what, names in (("missing", gone), ("not in the run", new), ("changed", changed)) if names]
        raise UserError(f"the dataset {folder} is not the one this run learnt from ({'; '.join(parts)})",
                        file=file, key="dataset",
                        expected=f"the {len(before)} pictures of {(ckpt.get('dataset') or {}).get('path', '?')}, "
                                 "or a new run (another --out)")


def save_atomic(obj: Any, path: Path) -> None:
    """Write beside, then rename: a crash or a second Ctrl-C mid-write leaves the old file whole."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def versions() -> dict[str, str]:
    import platform

    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
    return {"installation": str(__version__), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "python": platform.python_version()}
