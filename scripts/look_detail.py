#!/usr/bin/env python3
"""How much of its photographs' detail a look paints, in figures: for a model folder (its ONNX session,
the int8 twin where the show would play one) or a training checkpoint (its generator in eval mode, as the
export runs it), the detail figure (variance of the Laplacian of the grey 256x256 picture) of the model's
picture on each held-back photograph, beside the median of its own training photographs; the spike figure
(checkerboard) of the same pictures; and the flicker on a still input once the chain's output smoothing
has settled.

    python scripts/look_detail.py models/default --photos /work/look-runs/photos/sets/water
    python scripts/look_detail.py /work/look-runs/water/latest.pt --stills /tmp/water.png --json

The photographs' median: each picture of the set folder, short side scaled to 256, centre crop. With a
checkpoint of a run from target pictures, --photos defaults to the run's own dataset folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from installation.core.errors import UserError  # noqa: E402
from installation.training.quality import (  # noqa: E402
    PORTRAIT,
    detail_figure,
    held_back_photographs,
    photographs_detail,
    set_pictures,
    spike_figure,
    square,
)
from installation.vision.preprocess import Chain, ChainState  # noqa: E402

SETTLE, FRAMES = 30, 10  # frames played on a still input before flicker is measured, and frames measured


def open_look(path: Path) -> tuple[Chain, Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """(chain, picture -> picture, what it is) for a model folder or a checkpoint."""
    if path.is_dir():
        from installation.inference.models import load_model

        model = load_model(path, providers="cpu")
        return model.card.chain, model.infer, {"kind": "model"}
    import torch

    from installation.training.checkpoint import build_generator, load_checkpoint
    from installation.vision.preprocess import from_tensor, to_tensor

    torch.set_num_threads(1)
    ckpt = load_checkpoint(path)
    G = build_generator(ckpt, path).eval()
    chain = Chain.from_spec(ckpt["chain"], ckpt["size"])

    @torch.no_grad()
    def infer(img: np.ndarray) -> np.ndarray:
        return from_tensor(G(torch.from_numpy(to_tensor(img))).numpy())

    what = {"kind": "checkpoint", "epoch": ckpt["epoch"], "global_step": ckpt.get("global_step"),
            "seconds": round(ckpt.get("seconds", 0.0)), "dataset": ckpt.get("dataset", {}).get("path"),
            "config": {k: ckpt["config"].get(k) for k in ("l1_weight", "gan_weight", "d_layers", "norm",
                                                             "width", "d_width", "batch_size", "upsample")}}
    return chain, infer, what


def played(chain: Chain, infer: Callable[[np.ndarray], np.ndarray], picture: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture the show settles on for a still input (live chain, model, output smoothing), and the mean
    frame-to-frame change in grey levels over the last FRAMES frames."""
    values = chain.param_values()
    state = ChainState()
    frames = []
    for _ in range(SETTLE + FRAMES):
        x, _ = chain.apply_live(np.ascontiguousarray(picture), values, state)
        frames.append(chain.apply_output(infer(x), values, state))
    tail = np.stack(frames[-FRAMES - 1:]).astype(np.float32)
    return frames[-1], float(np.abs(np.diff(tail, axis=0)).mean())


def measure(path: Path, photos: Path | None) -> tuple[dict[str, Any], list[np.ndarray]]:
    chain, infer, what = open_look(path)
    if photos is None and what.get("dataset"):
        photos = Path(what["dataset"])
    row: dict[str, Any] = {"look": str(path), **what}
    tiles = []
    for name, pic in held_back_photographs().items():
        picture, flicker = played(chain, infer, pic)
        x = chain.for_training().apply(np.ascontiguousarray(pic))[0]
        row[name] = {"detail": round(detail_figure(picture), 1), "spike": round(spike_figure(picture), 2),
                     "flicker": round(flicker, 3)}
        tiles.append(np.concatenate([x, picture], axis=1))
    row["spike"] = max(row[n]["spike"] for n in held_back_photographs())
    row["flicker"] = max(row[n]["flicker"] for n in held_back_photographs())
    if photos is not None:
        own = photographs_detail(photos)
        row["photographs_median"] = round(statistics.median(own), 1)
        row["share"] = round(row[PORTRAIT]["detail"] / row["photographs_median"], 3)
        first = set_pictures(photos)[0]
        crop = cv2.cvtColor(square(cv2.imread(str(first))), cv2.COLOR_BGR2RGB)
        tiles[-1] = np.concatenate([tiles[-1], crop], axis=1)
    return row, tiles


def stills(tiles: list[np.ndarray], path: Path) -> None:
    """Rows of model input | picture shown, per held-back photograph; a crop of a set photograph at the end."""
    width = max(t.shape[1] for t in tiles)
    rows = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("looks", nargs="+", type=Path, help="model folders or checkpoints (latest.pt)")
    ap.add_argument("--photos", type=Path, default=None, help="the look's set folder (its training photographs)")
    ap.add_argument("--stills", type=Path, default=None, help="write a PNG of the pictures (one look only)")
    ap.add_argument("--json", action="store_true", help="one JSON line per look")
    args = ap.parse_args(argv)
    if args.stills and len(args.looks) > 1:
        ap.error("--stills takes one look")
    try:
        for path in args.looks:
            row, tiles = measure(path, args.photos)
            if args.stills:
                stills(tiles, args.stills)
            if args.json:
                print(json.dumps(row), flush=True)
                continue
            share = f"{100 * row['share']:.0f} %" if "share" in row else "-"
            print(f"{path}: detail on the portrait {row[PORTRAIT]['detail']} (photographs' median "
                  f"{row.get('photographs_median', '-')}, share {share}); person {row['camera']['detail']}, "
                  f"room {row['motorcycle_left']['detail']}; spike {row['spike']}; flicker {row['flicker']} "
                  "grey levels", flush=True)
    except UserError as e:
        print(f"look_detail: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
