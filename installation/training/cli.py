"""The training commands: `dataset build`, `dataset record`, `train`, `export`.

torch is imported inside the commands, so `installation --help` stays fast.
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

from ..errors import UserError
from ..preprocess import NAMED_CHAINS


def add_commands(sub: Any) -> None:
    p = sub.add_parser("dataset", help="make training pairs: record takes, build an aligned dataset")
    dsub = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)
    b = dsub.add_parser("build", help="turn videos and pictures into aligned input|target pairs",
                        description="Sample frames from videos and picture folders, skip those without a person, "
                                    "and write input|target pairs whose input is made by the live show's own "
                                    "preprocessing chain. Writes DIR/train, DIR/val and DIR/dataset.toml.")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, pictures, or folders of either")
    b.add_argument("--out", required=True, metavar="DIR", help="the dataset folder (new or empty)")
    _chain_arguments(b, default="edges")
    b.add_argument("--size", type=int, default=256, help="side of the model's input in pixels (default 256)")
    b.add_argument("--every", type=int, default=1, metavar="N", help="take every Nth video frame (default 1)")
    b.add_argument("--segment", choices=("chroma", "selfie", "none"), default="none",
                   help="find the person by green screen (chroma) or the selfie model; frames without one are skipped")
    b.add_argument("--layout", choices=("AB", "BA"), default="AB",
                   help="AB: input left, target right (pix2pix); BA: target left")
    b.add_argument("--val", type=float, default=0.1, help="fraction held out for validation (default 0.1)")
    b.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    b.add_argument("--models", type=Path, default=None, metavar="DIR", help="folder of the selfie .tflite models")
    b.set_defaults(func=cmd_dataset_build)

    r = dsub.add_parser("record", help="record takes from a camera after a countdown",
                        description="Count down, record SECONDS of camera frames to DIR/take_NNN.mp4, repeat. "
                                    "A video file given as --camera stands in for the camera.")
    r.add_argument("--camera", default="0", help="camera index or device path, or a video file (default 0)")
    r.add_argument("--out", required=True, metavar="DIR", help="folder for the takes")
    r.add_argument("--takes", type=int, default=3, metavar="N", help="how many takes (default 3)")
    r.add_argument("--seconds", type=float, default=10.0, metavar="S", help="length of each take (default 10)")
    r.add_argument("--countdown", type=float, default=3.0, metavar="S", help="countdown before each (default 3)")
    r.add_argument("--preview", action=argparse.BooleanOptionalAction, default=bool(os.environ.get("DISPLAY")),
                   help="show the camera with the countdown (default: when there is a display)")
    r.set_defaults(func=cmd_dataset_record)

    t = sub.add_parser("train", help="train a pix2pix model on a dataset (or on target pictures alone)",
                       description="Train pix2pix: U-Net generator, PatchGAN discriminator, L1 weight 100. Writes "
                                   "OUT/latest.pt every epoch (Ctrl-C saves and stops; --resume goes on), "
                                   "OUT/losses.jsonl, OUT/samples/epoch_NNNN.png and OUT/losses.png.")
    add_train_arguments(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="write a model folder (model.onnx + model.toml) from a checkpoint",
                       description="Export a checkpoint of `installation train`, a pix2pix latest_net_G.pth, or "
                                   "give an ONNX file from another trainer a card. The ONNX model is compared "
                                   "with PyTorch and not written if they differ by more than 1e-4 (fp16: 2e-2).")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="runs/NAME/latest.pt, latest_net_G.pth or model.onnx")
    e.add_argument("--out", required=True, metavar="DIR", help="the model folder, e.g. models/NAME")
    e.add_argument("--fp16", action="store_true", help="half-precision weights and tensors")
    e.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    e.add_argument("--arch", default=None, help="pix2pix checkpoints: unet_256, unet_128, resnet_9blocks "
                                                "(default: guessed from the keys)")
    e.add_argument("--size", type=int, default=None, help="pix2pix checkpoints: input side (default: the arch's)")
    _chain_arguments(e, default=None, what="pix2pix checkpoints and ONNX files: the card's chain (default plain)")
    e.add_argument("--name", default=None, help="the model's name (default: the folder's)")
    e.set_defaults(func=cmd_export)


def _chain_arguments(p: argparse.ArgumentParser, default: str | None, what: str = "") -> None:
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


def cmd_dataset_build(args: argparse.Namespace) -> int:
    from .dataset import BuildOptions, build_dataset

    opts = BuildOptions(size=args.size, every=args.every, segment=args.segment, layout=args.layout, val=args.val,
                        seed=args.seed)
    info = build_dataset(args.inputs, args.out, chain_spec(args), opts, models_dir=args.models)
    c = info.counts
    print(f"dataset: {c['pairs']} pairs ({info.split['train']} train, {info.split['val']} val) in {info.folder}; "
          f"{c['frames_read']} frames read, {c['duplicates_skipped']} near-duplicates and "
          f"{c['no_person_skipped']} without a person skipped")
    return 0


def cmd_dataset_record(args: argparse.Namespace) -> int:
    from .record import record

    takes = record(args.camera, args.out, args.takes, args.seconds, args.countdown, preview=args.preview)
    for t in takes:
        print(f"record: {t.path} {t.frames} frames, {t.seconds:.1f} s")
    print(f"record: {len(takes)} take(s); next: installation dataset build {args.out} --out DATASET --segment ...")
    return 0 if takes else 1


# ---- train -------------------------------------------------------------------------------------

# The train options that a checkpoint fixes, and the TrainConfig field each sets.
_FIXED_BY_CHECKPOINT = {"width": "width", "size": "size", "from_targets": "from_targets", "chain": "chain",
                        "chain_file": "chain", "batch_size": "batch_size", "lr": "lr", "seed": "seed",
                        "overrides": "--set"}


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
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="any other TrainConfig field, e.g. --set d_width=32 --set decay=0 (repeatable)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
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
    from .train import TrainConfig

    cfg = base or TrainConfig()
    by_name = {f.name: f for f in dataclasses.fields(TrainConfig)}
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
    from .train import Interrupted, TrainConfig, load_checkpoint, train

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
           "-m", "installation.training.train", *_train_argv(args)]
    print("train: " + shlex.join(cmd), file=sys.stderr)
    return subprocess.call(cmd)


# ---- export ------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_model

    chain = None if args.chain is None and args.chain_file is None else chain_spec(args)
    res = export_model(args.checkpoint, args.out, fp16=args.fp16, opset=args.opset, arch=args.arch, size=args.size,
                       chain=chain, name=args.name)
    h, w = res.card.size
    print(f"export: wrote {res.folder / 'model.onnx'} and model.toml ({w}x{h}, chain of "
          f"{len(res.card.chain.steps)} steps)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m installation.training.cli COMMAND ...`: the training commands alone, the same as under
    `installation`, for machines (or moments) where the rest of the runtime doesn't import."""

    parser = argparse.ArgumentParser(prog="installation", description="the training commands")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    from ..cli import dispatch

    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
