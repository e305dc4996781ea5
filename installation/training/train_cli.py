"""The trainer's command line: the `train` command's arguments and its run (single process, or torchrun
launching `python -m installation.training.train_cli` once per process), and the chain options the
dataset and export commands share. torch is imported inside the commands (train.py), never here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from installation.core.commands import dispatch
from installation.core.errors import UserError
from installation.vision.preprocess import NAMED_CHAINS


def add_chain_arguments(p: argparse.ArgumentParser, default: str | None, what: str = "") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--chain", default=default, choices=sorted(NAMED_CHAINS), metavar="NAME",
                   help=(what or "the preprocessing chain") + f": {', '.join(NAMED_CHAINS)}"
                        + (f" (default {default})" if default else ""))
    g.add_argument("--chain-file", type=Path, default=None, metavar="TOML",
                   help="a TOML file with [[preprocess]] steps (a show, model.toml or dataset.toml will do)")


def chain_spec(args: argparse.Namespace) -> Any:
    """The chain the arguments name: a NAMED_CHAINS name, or the [[preprocess]] list of a TOML file."""
    path = getattr(args, "chain_file", None)
    if path is None:
        return args.chain
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"can't read the chain: {e}", file=path) from None
    spec = data.get("preprocess")
    if not isinstance(spec, list):
        raise UserError("no [[preprocess]] steps", file=path, key="preprocess",
                        expected='[[preprocess]] tables, each with a step = "..."')
    return spec



# ---- train -------------------------------------------------------------------------------------

# Named sets of TrainConfig fields (`--recipe NAME`), applied before --set. "texture": of the changes tried
# one at a time on the water look (docs/texture.md, 216-225 steps each), only a lower L1 weight raised the
# detail on held-back photographs without a grid (x4 at 10; 1 raised it x6 with coloured halos); a 16x16
# PatchGAN, instance norm and the nearest decoder did not (the last painted a period-2 grid). With L1 at 10
# the spike figure crossed 10 within 600 steps (leaves 110, water 18 on the room); a low-pass before each
# of the PatchGAN's strides (d_blur) kept it under 9 but took the detail back to the shipped looks' (water
# 4.0 at 378 steps against 35.0 at 432 without): it blinds the judge to the finest scales. Not in the recipe.
RECIPES: dict[str, dict[str, Any]] = {
    "pix2pix": {"l1_weight": 100.0, "gan_weight": 1.0, "d_layers": 3, "norm": "batch", "d_blur": False},
    "texture": {"l1_weight": 10.0, "gan_weight": 1.0, "d_layers": 3, "norm": "batch", "d_blur": False},
}

# The train options that a checkpoint fixes, and the TrainConfig field each sets.
_FIXED_BY_CHECKPOINT = {"width": "width", "size": "size", "from_targets": "from_targets", "chain": "chain",
                        "chain_file": "chain", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
                        "recipe": "recipe", "overrides": "--set"}


def add_train_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument("dataset", nargs="?", metavar="DATASET",
                   help="a folder from `installation dataset build` (with --from-targets: a folder of pictures)")
    t.add_argument("--out", default=None, metavar="DIR", help="the run folder, e.g. runs/NAME")
    t.add_argument("--resume", type=Path, default=None, metavar="CHECKPOINT",
                   help="go on from runs/NAME/latest.pt; everything else comes from it (--epochs may extend it)")
    t.add_argument("--epochs", type=int, default=None, help="epochs in all (default 200)")
    t.add_argument("--width", type=int, default=None, help="generator base width (default 64; 16 runs live on a CPU)")
    t.add_argument("--size", type=int, default=None, help="input side, 256 or 512 (default: the dataset's)")
    t.add_argument("--from-targets", action="store_true", default=None,
                   help="DATASET is a folder of target pictures; the inputs are made on the fly by the chain")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--chain", default=None, choices=sorted(NAMED_CHAINS), metavar="NAME",
                   help="with --from-targets: the preprocessing chain (default grey_blur_downscale)")
    g.add_argument("--chain-file", type=Path, default=None, metavar="TOML", help="... or one from a TOML file")
    t.add_argument("--batch-size", type=int, default=None, help="pictures per step (default 4)")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 2e-4)")
    t.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    t.add_argument("--device", default=None, choices=("auto", "cuda", "cpu"), help="default auto")
    t.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default 0)")
    t.add_argument("--recipe", default=None, choices=sorted(RECIPES), metavar="NAME",
                   help=f"a named set of settings, before any --set: {', '.join(RECIPES)} (default pix2pix)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="any other TrainConfig field, e.g. --set d_width=32 --set decay=0 (repeatable)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress at all (off a terminal it is already a plain line every 30 s, no bars)")
    t.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train in N processes through torchrun (DDP: one per GPU, or gloo on CPUs)")


def _coerce_field(f: dataclasses.Field, raw: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "str")
    try:
        if kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise UserError(f"--set {f.name}={raw}: not a {kind}", key=f.name) from None
    return raw


def train_config(args: argparse.Namespace, base: Any = None) -> Any:
    """The TrainConfig the arguments describe, over `base` (a resumed checkpoint's config) or the defaults."""
    from installation.training.train import TrainConfig

    cfg = base or TrainConfig()
    by_name = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if getattr(args, "recipe", None):
        for key, value in RECIPES[args.recipe].items():
            setattr(cfg, key, value)
        cfg.recipe = args.recipe
    for item in args.overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in by_name:
            raise UserError(f"--set {item!r}", key="--set",
                            expected="KEY=VALUE with KEY one of " + ", ".join(by_name))
        setattr(cfg, key, _coerce_field(by_name[key], raw.strip()))
    for name in ("epochs", "width", "size", "batch_size", "lr", "seed", "device", "workers", "from_targets"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, value)
    if args.chain is not None or args.chain_file is not None:
        cfg.chain = chain_spec(args)
    if args.dataset is not None:
        cfg.dataset = str(args.dataset)
    if args.out is not None:
        cfg.out = str(args.out)
    if args.no_progress:
        cfg.progress = False
    return cfg


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The command line these arguments came from (for provenance and for re-launching under torchrun)."""
    out: list[str] = [] if args.dataset is None else [str(args.dataset)]
    for name, value in vars(args).items():
        if name in ("dataset", "func", "command", "verbose", "nproc", "overrides") or value in (None, False):
            continue
        flag = "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    for item in args.overrides:
        out += ["--set", item]
    return out


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return _launch_torchrun(args)
    from installation.training.train import Interrupted, TrainConfig, load_checkpoint, train

    command = shlex.join(["installation", "train", *_train_argv(args)])
    if args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        given = [f"--{k.replace('_', '-')}" for k in _FIXED_BY_CHECKPOINT
                 if getattr(args, k, None) not in (None, False, [])]
        if given:
            raise UserError(f"{', '.join(given)}: fixed by the checkpoint", file=args.resume,
                            expected="only --epochs, --device, --workers, --out or a moved DATASET with --resume")
        cfg = train_config(args, TrainConfig.from_dict(ckpt["config"]))
        command = ckpt.get("command") or command
    else:
        if args.dataset is None:
            raise UserError("no dataset given", key="DATASET", expected="installation train DATASET --out runs/NAME")
        if args.out is None:
            raise UserError("no run folder given", key="--out", expected="--out runs/NAME")
        cfg = train_config(args)
    try:
        trainer = train(cfg, resume=args.resume, command=command)
    except Interrupted as e:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"train: stopped; {e}. Go on with: installation train --resume {e.path}", file=sys.stderr)
        return 130
    if trainer.dist.main:
        last = trainer.history[-1] if trainer.history else {}
        losses = "  ".join(f"{k} {v:.4f}" for k, v in last.items() if k not in ("epoch", "lr", "seconds"))
        print(f"train: {trainer.epoch} epochs done, {losses}; checkpoint {trainer.latest}; "
              f"next: installation export {trainer.latest} --out models/NAME")
    return 0


def _launch_torchrun(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.nproc}",
           "-m", "installation.training.train_cli", *_train_argv(args)]
    print("train: " + shlex.join(cmd), file=sys.stderr)
    return subprocess.call(cmd)




def main(argv: list[str] | None = None) -> int:
    """`python -m installation.training.train_cli` (what torchrun launches): the `train` command's arguments."""
    parser = argparse.ArgumentParser(prog="python -m installation.training.train_cli")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    args.func = cmd_train
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
