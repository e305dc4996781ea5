"""What `installation check` finds wrong with a show that loads but will not work as configured: a camera
that isn't there, selfie models never fetched, a screen out of range, a provider that doesn't exist, a
chain that needs the person mask with segmentation off. Each is a UserError naming the file and key; the
command lists them all and exits 1 (an invalid file stays exit 2, raised before any of this runs)."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from installation.app import default_registry, load_show
from installation.core.errors import UserError
from installation.core.params import Registry
from installation.inference.models import (
    PROVIDER_ALIASES,
    Model,
    choose_providers,
    load_model,
    plan_model,
    precision_line,
)
from installation.show.config import ShowConfig


def start_values(cfg: ShowConfig, registry: Registry, model: Model | None,
                 restored: Mapping[str, Any]) -> dict[str, Any]:
    """The values the show starts with, in the order Show.build and the state folder lay them down."""
    values = {name: p.default for name, p in registry.items()}
    if model is not None:
        values.update(model.card.chain.param_values())
    values.update(cfg.params)
    if cfg.state.restore:
        values.update(restored)
    return values


def camera_problem(cfg: ShowConfig) -> UserError | None:
    from installation.media.sources import camera_exists, list_cameras

    s = cfg.source
    if s.kind != "camera" or camera_exists(s.camera) is not False:
        return None
    here = ", ".join(list_cameras()) or "none found"
    return UserError(f"camera {s.camera} does not exist on this machine (cameras here: {here})", file=cfg.path,
                     key="source.camera", expected="an index of a /dev/video* device, or a /dev/v4l/by-id/ path")


def selfie_problem(cfg: ShowConfig, values: Mapping[str, Any], restored: Mapping[str, Any]) -> UserError | None:
    if values.get("seg/mode") != "selfie":
        return None
    from installation.vision.segment import DEFAULT_MODELS_DIR, SelfieSegmenter

    try:
        SelfieSegmenter(DEFAULT_MODELS_DIR, values.get("seg/model", "auto"))  # looks the files up, loads nothing
    except UserError as e:
        return UserError(f"seg/mode is \"selfie\" but {e.render()}", file=cfg.path,
                         key=_key(cfg, "seg/mode", restored))
    return None


def mask_problems(cfg: ShowConfig, values: Mapping[str, Any], models: list[Model],
                  restored: Mapping[str, Any]) -> list[UserError]:
    """A chain step that reads the person mask sees solid white (the whole frame is 'person') without one."""
    if values.get("seg/mode") != "none":
        return []
    out = []
    for m in models:
        if any(step.kind == "mask" for step in m.card.chain.steps):
            out.append(UserError(f"model {m.name}'s preprocessing has a 'mask' step but seg/mode is \"none\": "
                                 "the model would see solid white", file=cfg.path, key=_key(cfg, "seg/mode", restored),
                                 expected='a seg/mode that finds the person ("selfie", "chroma", "background")'))
    return out


def provider_problems(cfg: ShowConfig) -> list[UserError]:
    import onnxruntime as ort

    wanted = cfg.model.providers
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    if names in (["auto"], []):
        return []
    known = {n.lower(): n for n in ort.get_all_providers()} | dict(PROVIDER_ALIASES)
    available = ort.get_available_providers()
    out = []
    resolved = []
    for n in names:
        full = known.get(n.lower())
        if full is None:
            near = difflib.get_close_matches(n.lower(), list(PROVIDER_ALIASES) + list(known), n=1, cutoff=0.6)
            out.append(UserError(f"no execution provider {n!r}" + (f" (did you mean {near[0]!r}?)" if near else ""),
                                 file=cfg.path, key="model.providers",
                                 expected="auto, or names from: " + ", ".join(PROVIDER_ALIASES)))
        else:
            resolved.append(full)
    if not out and resolved and not any(r in available for r in resolved):
        out.append(UserError(f"none of {names} is available here; ONNX Runtime would run on the CPU",
                             file=cfg.path, key="model.providers", expected="one of: " + ", ".join(available)))
    return out


def screen_problem(cfg: ShowConfig, screens: list[str], headless_ok: bool = True) -> tuple[UserError | None, str]:
    """(a problem, a note). With no screen at all the show plays headless: nothing to judge, only said."""
    n = cfg.render.screen
    if not screens:
        return None, (f"render.screen = {n}: no screen here (headless), so it can't be checked" if n else "")
    if screens[0].startswith("(can't list"):
        return None, f"render.screen = {n}: {screens[0]}"
    if n >= len(screens):
        return UserError(f"screen {n} does not exist (screens here: {'; '.join(screens)})", file=cfg.path,
                         key="render.screen", expected=f"0..{len(screens) - 1}"), ""
    return None, ""


def _key(cfg: ShowConfig, name: str, restored: Mapping[str, Any]) -> str:
    if cfg.state.restore and name in restored:
        return f"{name} (restored from the state folder: `installation state reset` forgets it)"
    return "params." + name.replace("/", ".") if name in cfg.params else f"params (default {name})"


def find_problems(cfg: ShowConfig, registry: Registry, models: list[Model], restored: Mapping[str, Any],
                  screens: list[str]) -> tuple[list[UserError], list[str]]:
    values = start_values(cfg, registry, models[0] if models else None, restored)
    problems: list[UserError | None] = [camera_problem(cfg), selfie_problem(cfg, values, restored)]
    problems += mask_problems(cfg, values, models, restored)
    problems += provider_problems(cfg)
    screen, note = screen_problem(cfg, screens)
    problems.append(screen)
    return [p for p in problems if p is not None], [note] if note else []


def restored_values(folder: Path | None, registry: Registry) -> dict[str, Any]:
    """The live values a start would restore from the state folder (read only: nothing is set aside)."""
    from installation.core.state import saved_live_values

    if folder is None:
        return {}
    return {k: v for k, v in saved_live_values(folder).items() if k in registry and registry[k].persist}


def report(cfg: ShowConfig, registry: Registry, models: list[Model], screens: list[str],
           state: Path | None = None) -> int:
    """The end of `check`: what a start would restore, every problem found, then ok (0) or not (1)."""
    import sys

    from installation.core.state import said_value, state_dir

    folder = state_dir(cfg.name, state)
    restored = restored_values(folder, registry)
    shown = start_values(cfg, registry, models[0] if models else None, {})
    differ = {k: v for k, v in restored.items() if shown.get(k) != v}
    if differ and cfg.state.restore:
        print(f"restored at start from {folder}: "
              + ", ".join(f"{k} = {said_value(v)} (show file: {said_value(shown.get(k))})"
                          for k, v in sorted(differ.items()))
              + "; `run --fresh` ignores them, `installation state reset` removes them")
    elif differ:
        print(f"saved live values in {folder} are not restored ([state] restore = false)")
    problems, notes = find_problems(cfg, registry, models, restored, screens)
    for note in notes:
        print(f"note: {note}")
    for p in problems:
        print(f"problem: {p.render()}")
    if problems:
        n = len(problems)
        print(f"error: {n} problem{'s' if n > 1 else ''}: the show will not work as configured", file=sys.stderr)
        return 1
    print("ok")
    return 0


# ---- `installation check` ------------------------------------------------------------------------

def _workers_plan(cfg: ShowConfig, model: Model) -> str:
    """What `[model] workers` will come to with this show's source, in words (for `check`)."""
    if cfg.model.workers != "auto":
        return f"{cfg.model.workers} (set in the show)"
    if cfg.model.then:
        return "1 (chained models take one frame at a time)"
    s = cfg.source
    fps = s.fps
    if s.kind == "video" and s.video is not None:
        from installation.media.sources import VideoReader

        fps = VideoReader(s.video).fps
    try:
        plan, _ = plan_model(model, fps)
    except Exception as e:
        raise UserError(f"the model fails a trial inference: {type(e).__name__}: {str(e).strip().splitlines()[0]}",
                        file=model.path, expected="a graph whose input matches its card") from None
    return f"{plan.workers} ({plan.why})"


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a show and say what it would use. A missing or broken model is an error here."""
    from installation.media.sources import list_cameras
    from installation.render.displays import list_screens

    registry = default_registry()
    cfg = load_show(args.show, registry)
    print(f"show: {cfg.name} ({cfg.path})")
    s = cfg.source
    what = {"camera": f"camera {s.camera} at {s.width}x{s.height} {s.fps:g} fps", "video": f"video {s.video}",
            "synthetic": f"synthetic pattern {s.width}x{s.height}", "ndi": f"NDI {s.name!r}"}[s.kind]
    print(f"source: {what}")
    if s.kind == "video" and (s.video is None or not s.video.is_file()):
        raise UserError("video not found", file=cfg.path, key="source.video", expected=f"a file at {s.video}")
    providers = choose_providers(cfg.model.providers)
    models: list[Model] = []  # for the checks that need their cards (showcheck.py)
    if cfg.model.path is None:
        print("model: none (camera picture only)")
    else:
        precision = cfg.model.precision
        model = load_model(cfg.model.path, cfg.model.providers, precision=precision)
        models = [model, *(load_model(p, cfg.model.providers, precision=precision) for p in cfg.model.then)]
        c = model.card
        print(f"model: {c.name} ({model.path}), input {c.size[1]}x{c.size[0]} {c.layout} range {c.value_range}"
              + (" [card inferred from the graph]" if c.inferred else ""))
        print(f"preprocessing: {' -> '.join(st.kind for st in c.chain.steps)}")
        print(f"inference: {', '.join(model.backend.providers)}")
        print(f"precision: {precision_line(model)}")
        print(f"frames in flight: {_workers_plan(cfg, model)}")
    print(f"providers available: {', '.join(providers)}")
    screens = list_screens()
    print(f"displays: {'; '.join(screens) if screens else 'none (headless: EGL offscreen)'}")
    cams = list_cameras()
    print(f"cameras: {', '.join(cams) if cams else 'none found'}")
    from installation.ops.rig import check_lines

    print("\n".join(check_lines(cfg)))  # NDI sources, virtual cameras, MIDI ports (rig.py)
    from installation.control.options import exposure_lines

    print("\n".join(exposure_lines(cfg)))  # the ports, who may send, writes, keys: the show's exposure
    from installation.core.cpu import cpu_name
    from installation.core.state import state_dir
    from installation.show.governor import check_lines

    segmenting = start_values(cfg, registry, models[0] if models else None, {}).get("seg/mode") != "none"
    print("\n".join(check_lines(cfg.governor, segmenting, state_dir(cfg.name, getattr(args, "state", None)),
                                cpu_name())))  # what it may give up, and what it gave up here last time
    return report(cfg, registry, models, screens, getattr(args, "state", None))


def add_commands(sub: Any) -> None:
    p = sub.add_parser("check", help="validate a show and print what it would use; exit 1: it will not work")
    p.add_argument("show", nargs="?", default=None)
    p.add_argument("--state", type=Path, metavar="DIR", help="the show's state folder (default: the show's own)")
    p.set_defaults(func=cmd_check)
