"""The `train` command: its arguments (`add_train_arguments`) and its run (`cmd_train`: a new run, or one
resumed from a checkpoint, in this process or in N through torchrun, which launches
`python -m installation.training.train_cli` once per process). What the arguments make of a TrainConfig,
and the chain options every training command shares, are config.py's; the other training commands
(dataset, export, quantize) and the parser that gathers them are cli.py's. torch is imported inside
cmd_train (train.py), never here."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

from installation.core.commands import dispatch
from installation.core.errors import UserError
from installation.training.config import RECIPES, TrainConfig, add_chain_arguments, train_config

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
    t.add_argument("--from", type=Path, default=None, metavar="CHECKPOINT", dest="branch",
                   help="a new run in --out that goes on from another run's checkpoint (weights, optimisers, steps, "
                        "crops) with other loss settings (--recipe, --set); its networks, chain, size and pictures "
                        "are the checkpoint's. The old run's folder is left as it is")
    t.add_argument("--epochs", type=int, default=None, help="epochs in all (default 200)")
    t.add_argument("--width", type=int, default=None, help="generator base width (default 64; 16 runs live on a CPU)")
    t.add_argument("--size", type=int, default=None, help="input side, 256 or 512 (default: the dataset's)")
    t.add_argument("--from-targets", action="store_true", default=None,
                   help="DATASET is a folder of target pictures; the inputs are made on the fly by the chain")
    add_chain_arguments(t, default=None, what="with --from-targets: the preprocessing chain (default "
                                              f"{TrainConfig.chain})")
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


def _train_argv(args: argparse.Namespace) -> list[str]:
    """The command line these arguments came from (for provenance and for re-launching under torchrun)."""
    out: list[str] = [] if args.dataset is None else [str(args.dataset)]
    for name, value in vars(args).items():
        if name in ("dataset", "func", "command", "verbose", "nproc", "overrides") or value in (None, False):
            continue
        flag = "--from" if name == "branch" else "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    for item in args.overrides:
        out += ["--set", item]
    return out


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return _launch_torchrun(args)
    from installation.training.train import Interrupted, load_checkpoint, train

    command = shlex.join(["installation", "train", *_train_argv(args)])
    start = args.resume
    if args.branch is not None:
        cfg, start = _branch(args), args.branch
    elif args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        given = ["--set" if k == "overrides" else f"--{k.replace('_', '-')}" for k in _FIXED_BY_CHECKPOINT
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
        trainer = train(cfg, resume=start, command=command)
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


# What a branch keeps from the run it leaves: the networks, the pictures and how they are cut.
_FIXED_BY_BRANCH = ("width", "size", "from_targets", "chain", "chain_file", "batch_size")


def _branch(args: argparse.Namespace) -> TrainConfig:
    """The config of a new run going on from args.branch: the old run's, then --recipe and --set (loss weights,
    the discriminator's anti-aliasing), in a folder of its own."""
    from installation.training.train import load_checkpoint

    ckpt = load_checkpoint(args.branch)
    if args.resume is not None:
        raise UserError("--from and --resume together", key="--from",
                        expected="--resume to go on with a run, --from to start a new one from it")
    given = [f"--{k.replace('_', '-')}" for k in _FIXED_BY_BRANCH if getattr(args, k, None) not in (None, False)]
    if given:
        raise UserError(f"{', '.join(given)}: fixed by the checkpoint", file=args.branch,
                        expected="--out, --recipe, --set, --epochs, --device, --workers or a moved DATASET with --from")
    if args.out is None:
        raise UserError("no run folder given", key="--out", expected="--out runs/NEW (not the old run's folder)")
    if Path(args.out).resolve() == Path(args.branch).resolve().parent:
        raise UserError("--out is the old run's folder", file=args.branch,
                        expected="a folder of its own for the new run: the old one is left as it is")
    cfg = train_config(args, TrainConfig.from_dict(ckpt["config"]))
    if cfg.d_blur and cfg.d_blur_pool:
        raise UserError("d_blur and d_blur_pool both set", key="d_blur_pool", expected="one of them at most")
    return cfg


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
