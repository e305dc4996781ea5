"""The training commands under one parser (`add_commands`, which `installation` and
`python -m installation.training.cli` both use): `dataset build`, `dataset record`, `export` and `quantize`
are run here; `train` is train_cli.py's (its arguments, its run, the torchrun entry). The chain options
the commands share are config.py's.

torch is imported inside the commands, so `installation --help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from installation.core.commands import dispatch
from installation.training.config import add_chain_arguments, chain_spec
from installation.training.train_cli import add_train_arguments, cmd_train


def add_commands(sub: Any) -> None:
    p = sub.add_parser("dataset", help="make training pairs: record takes, build an aligned dataset")
    dsub = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)
    b = dsub.add_parser("build", help="turn videos and pictures into aligned input|target pairs",
                        description="Sample frames from videos and picture folders, skip those without a person, "
                                    "and write input|target pairs whose input is made by the live show's own "
                                    "preprocessing chain. Writes DIR/train, DIR/val and DIR/dataset.toml.")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video files, pictures, or folders of either")
    b.add_argument("--out", required=True, metavar="DIR", help="the dataset folder (new or empty)")
    add_chain_arguments(b, default="edges")
    b.add_argument("--size", type=int, default=256, help="side of the model's input in pixels (default 256)")
    b.add_argument("--every", type=int, default=1, metavar="N", help="take every Nth video frame (default 1)")
    b.add_argument("--segment", choices=("chroma", "selfie", "none"), default="none",
                   help="find the person by green screen (chroma) or the selfie model; frames without one are skipped")
    b.add_argument("--layout", choices=("AB", "BA"), default="AB",
                   help="AB: input left, target right (pix2pix); BA: target left")
    b.add_argument("--crop", choices=("centre", "fit"), default=None,
                   help="the camera picture's framing: centre, its central square (the chains' default), or fit, "
                        "all of it letterboxed (a 16:9 show without black bars: docs/workshop.md)")
    b.add_argument("--val", type=float, default=0.1, help="fraction held out for validation (default 0.1)")
    b.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    b.add_argument("--models", type=Path, default=None, metavar="DIR", help="folder of the selfie .tflite models")
    b.set_defaults(func=cmd_dataset_build)

    r = dsub.add_parser("record", help="record takes from a camera after a countdown",
                        description="Count down, record SECONDS of camera frames to DIR/take_NNN.mp4, repeat. "
                                    "Takes are numbered on from the folder's last one: none is overwritten. A "
                                    "video file given as --camera stands in for the camera (it waits during the "
                                    "countdown).")
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
    add_chain_arguments(e, default=None, what="pix2pix checkpoints and ONNX files: the card's chain (default plain)")
    e.add_argument("--name", default=None, help="the model's name (default: the folder's)")
    e.set_defaults(func=cmd_export)

    q = sub.add_parser("quantize", help="add an int8 version of a model for the CPU (model.int8.onnx)",
                       description="Calibrate an 8-bit version of a model folder's model.onnx on pictures made by "
                                   "its own preprocessing chain, compare its pictures with model.onnx's on "
                                   "held-out ones, and, within the bar, write model.int8.onnx and the card's "
                                   "[int8] table. Shows whose [model] precision is \"auto\" run it on the CPU.")
    q.add_argument("model", type=Path, metavar="MODEL", help="the model folder, e.g. models/NAME")
    q.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="videos, pictures or folders to calibrate on: the show's own footage is best "
                        "(default: the sample clip)")
    q.add_argument("--pictures", type=int, default=96, help="pictures taken, half to calibrate, half to check "
                                                           "(default 96)")
    q.add_argument("--max-diff", type=float, default=None, metavar="LEVELS",
                   help="refuse when the pictures differ from model.onnx's by more than this many grey levels on "
                        "average (default 3)")
    q.set_defaults(func=cmd_quantize)


def cmd_dataset_build(args: argparse.Namespace) -> int:
    from installation.training.dataset import BuildOptions, build_dataset

    opts = BuildOptions(size=args.size, every=args.every, segment=args.segment, layout=args.layout, val=args.val,
                        seed=args.seed, crop=args.crop)
    info = build_dataset(args.inputs, args.out, chain_spec(args), opts, models_dir=args.models)
    c = info.counts
    print(f"dataset: {c['pairs']} pairs ({info.split['train']} train, {info.split['val']} val) in {info.folder}; "
          f"{c['frames_read']} frames read, {c['duplicates_skipped']} near-duplicates and "
          f"{c['no_person_skipped']} without a person skipped")
    print(f"dataset: next: look at a few pairs in {info.folder / 'train'}, then "
          f"installation train {info.folder} --out runs/NAME --width 16 --epochs 10")
    return 0


def cmd_dataset_record(args: argparse.Namespace) -> int:
    from installation.training.record import record

    takes = record(args.camera, args.out, args.takes, args.seconds, args.countdown, preview=args.preview)
    for t in takes:
        print(f"record: {t.path} {t.frames} frames, {t.seconds:.1f} s")
    print(f"record: {len(takes)} take(s); next: installation dataset build {args.out} --out DATASET --segment ...")
    return 0 if takes else 1


# ---- export ------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from installation.training.export import export_model

    chain = None if args.chain is None and args.chain_file is None else chain_spec(args)
    res = export_model(args.checkpoint, args.out, fp16=args.fp16, opset=args.opset, arch=args.arch, size=args.size,
                       chain=chain, name=args.name)
    h, w = res.card.size
    print(f"export: wrote {res.folder / 'model.onnx'} and model.toml ({w}x{h}, chain of "
          f"{len(res.card.chain.steps)} steps)")
    print(f"export: next: installation quantize {res.folder} TAKES (an int8 twin for the CPU), then "
          f"installation show new NAME --model {res.folder}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from installation.core.chatter import ORT_CALIBRATION, quiet_prints
    from installation.media.sample import ensure_sample_clip
    from installation.training.dataset import describe_sources, find_sources
    from installation.training.quantize import MAX_DIFF, quantize_model

    inputs = args.inputs or [ensure_sample_clip()]
    print(f"quantize: calibrating on {describe_sources(find_sources(inputs))}", flush=True)
    with quiet_prints(ORT_CALIBRATION):
        res = quantize_model(args.model, inputs, count=max(8, args.pictures),
                             max_diff=MAX_DIFF if args.max_diff is None else args.max_diff)
    print(f"quantize: wrote {res.folder / 'model.int8.onnx'}: {res.mean_diff:.2f} grey levels from model.onnx on "
          f"average over {res.checked_on} held-out pictures (worst {res.worst_diff:.2f}); "
          f"{res.ms_int8:.1f} against {res.ms_fp32:.1f} ms an inference here")
    print(f"quantize: next: installation show new NAME --model {res.folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m installation.training.cli COMMAND ...`: the training commands alone, the same as under
    `installation`, for machines (or moments) where the rest of the runtime doesn't import."""

    parser = argparse.ArgumentParser(prog="installation", description="the training commands")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
