"""`installation show new NAME --model DIR`: a show file that fits a model's card, one command after
`export`. The card decides what a hand-copied show gets wrong:

  - a chain with a 'mask' step needs the person found: segmentation on (the segmenter the dataset was
    built with, selfie by default), and the person show's mix (the model paints the person, the room
    stays the camera's), as show_configs/person.toml has it;
  - a chain that letterboxes the camera (crop "fit", `dataset build --crop fit`) fills a 16:9 screen
    without black bars (display/fit "fill" cuts exactly the bars); a centre-cropped one shows its square
    whole (display/fit "fit").

The file is written once (never over another without --force) and `installation check NAME` judges it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.tomlout import toml_value
from installation.inference.models import ModelCard, read_card

SEGMENTERS = ("selfie", "chroma")


@dataclass
class ShowPlan:
    """What the show file will say, and why (the comments written above each choice)."""

    name: str
    model: Path  # the model folder
    card: ModelCard
    source: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    why: list[str] = field(default_factory=list)


def read_model_card(model: Path) -> ModelCard:
    """The folder's model.toml; a folder without one, or a card that can't be read, is a UserError naming
    the file (and the key)."""
    if not model.is_dir():
        raise UserError("no such model folder", file=model, expected="a folder written by `installation export`")
    path = model / "model.toml"
    if not path.is_file():
        raise UserError("no model card in this folder", file=path,
                        expected="model.toml beside model.onnx (`installation export` writes both)")
    if not (model / "model.onnx").is_file():
        raise UserError("no model.onnx beside the card", file=model / "model.onnx",
                        expected="a folder written by `installation export`")
    return read_card(path)


def source_table(camera: str) -> dict[str, Any]:
    """[source]: a camera index or device path, or a video file standing in for the camera."""
    p = Path(camera)
    if p.is_file():
        return {"kind": "video", "video": str(p.resolve()), "loop": True}
    return {"kind": "camera", "camera": int(camera) if camera.isdigit() else camera, "width": 1280, "height": 720,
            "fps": 30}


def plan_show(name: str, model: Path, camera: str = "0") -> ShowPlan:
    card = read_model_card(model)
    plan = ShowPlan(name, model, card, source_table(camera))
    masks = any(step.kind == "mask" for step in card.chain.steps)
    if masks:
        seg = card.provenance.get("segment")
        mode = seg if seg in SEGMENTERS else "selfie"
        plan.params.update({"seg/mode": mode, "seg/scale": 0.5, "seg/feather": 3.0, "seg/smooth": 0.3,
                            "mix/mode": "person"})
        plan.why.append(f"the model's chain reads the person mask: segmentation on ({mode}"
                        + (", as the dataset was built" if seg in SEGMENTERS else "") + "), and the model paints "
                        "the person only, the room stays the camera's (mix/mode person)")
    crops = [step.args.get("crop") for step in card.chain.steps if step.kind == "crop"]
    if crops and crops[0] == "fit":
        plan.params["display/fit"] = "fill"
        plan.why.append("the chain letterboxes the whole camera picture: display/fit fill shows it on a 16:9 "
                        "screen without black bars (it cuts exactly the bars)")
    else:
        plan.params["display/fit"] = "fit"
        plan.why.append("the chain sees the camera's central square (mirrored): display/fit fit shows that square "
                        "whole, with black bars at the sides of a 16:9 screen; a model built with "
                        "`dataset build --crop fit` fills the screen (docs/workshop.md, Framing)")
    plan.params["hud/show"] = False
    return plan


def show_text(plan: ShowPlan, path: Path, command: str, who: str) -> str:
    # relative to the show file, as show paths are read, unless that climbs out of the workshop's folder
    rel = os.path.relpath(plan.model.resolve(), path.parent.resolve())
    model = Path(rel) if not rel.startswith(os.pardir + os.sep + os.pardir) else plan.model.resolve()
    notes = [f"Made by `{command}` on {_dt.date.today().isoformat()} for the model {plan.card.name!r}.",
             *[f"{why[0].upper()}{why[1:]}." for why in plan.why],
             f"`installation check {who}` says whether it will work here; edit freely."]
    lines = [*(f"# {line}" for note in notes for line in textwrap.wrap(note, 108)),
             f"name = {toml_value(plan.name)}",
             f"description = {toml_value(f'the camera repainted by {plan.card.name}')}", "", "[source]",
             *[f"{k} = {toml_value(v)}" for k, v in plan.source.items()], "", "[model]",
             f"path = {toml_value(model.as_posix())}", "", "[render]", "fullscreen = true", "content_size = 720",
             "", "[params]", *[f"{toml_value(k)} = {toml_value(v)}" for k, v in plan.params.items()]]
    return "\n".join(lines) + "\n"


def write_show(name: str, model: Path, out: Path | None = None, camera: str = "0", force: bool = False,
               command: str = "") -> tuple[Path, ShowPlan]:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise UserError(f"show name {name!r}", key="NAME", expected="a plain name, e.g. me (a path goes in --out)")
    plan = plan_show(name, model, camera)
    path = out or Path("show_configs") / f"{name}.toml"  # where `check NAME` and `run NAME` look first
    if path.exists() and not force:
        raise UserError("a show file of this name exists", file=path, expected="another NAME, --out, or --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    who = name if out is None else str(path)
    path.write_text(show_text(plan, path, command or shlex.join(["installation", *sys.argv[1:]]), who))
    return path, plan


def cmd_show_new(args: argparse.Namespace) -> int:
    path, plan = write_show(args.name, args.model, args.out, args.camera, args.force)
    print(f"show: wrote {path} for the model {plan.card.name!r}: " + "; ".join(plan.why))
    who = args.name if args.out is None else str(path)
    print(f"show: next: installation check {who}, then installation rehearse {who} (the sample clip) or "
          f"installation run {who}")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("show", help="make show files")
    ssub = p.add_subparsers(dest="show_command", metavar="SUBCOMMAND", required=True)
    n = ssub.add_parser("new", help="write a show file that fits a model (segmentation, mix, framing from its card)",
                        description="Write show_configs/NAME.toml (or --out) for a model folder: the camera, the "
                                    "model, and what its card asks for: segmentation on and the person show's mix "
                                    "when its chain reads the person mask, a framing that fits the chain's crop.")
    n.add_argument("name", metavar="NAME", help="the show's name (show_configs/NAME.toml)")
    n.add_argument("--model", type=Path, required=True, metavar="DIR", help="the model folder, e.g. models/me")
    n.add_argument("--out", type=Path, default=None, metavar="FILE", help="where to write it instead")
    n.add_argument("--camera", default="0", help="camera index or device path, or a video file standing in for "
                                                 "the camera (default 0)")
    n.add_argument("--force", action="store_true", help="replace a show file of that name")
    n.set_defaults(func=cmd_show_new)
