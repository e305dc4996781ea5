"""What `installation check` finds wrong with a show that loads but will not work as configured: a camera
that isn't there, selfie models never fetched, a screen out of range, a provider that doesn't exist, a
chain that needs the person mask with segmentation off. Each is a UserError naming the file and key; the
command lists them all and exits 1 (an invalid file stays exit 2, raised before any of this runs)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.params import Registry
from installation.inference.models import PROVIDER_ALIASES, Model
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

    from installation.core.state import _fmt, state_dir

    folder = state_dir(cfg.name, state)
    restored = restored_values(folder, registry)
    shown = start_values(cfg, registry, models[0] if models else None, {})
    differ = {k: v for k, v in restored.items() if shown.get(k) != v}
    if differ and cfg.state.restore:
        print(f"restored at start from {folder}: "
              + ", ".join(f"{k} = {_fmt(v)} (show file: {_fmt(shown.get(k))})" for k, v in sorted(differ.items()))
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


# ---- flags checked before anything opens (run, rehearse) ---------------------------------------------

def writable_folder(folder: Path, flag: str) -> None:
    """A folder the show will write into: made now, so a mistake is one line at start, not a traceback
    at the end of a rehearsal (--stats is written when the show stops)."""
    import os

    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"{blocker} is a file, not a folder", key=flag, expected="a folder this user may write")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"can't make the folder {folder}: {e.strerror or e}", key=flag,
                        expected="a folder this user may write") from None
    if not os.access(folder, os.W_OK):
        raise UserError(f"{folder} is not writable", key=flag, expected="a folder this user may write")


def listen_address(host: str, flag: str) -> None:
    """An address OSC can listen on: a name that doesn't resolve or an address of another machine would
    otherwise be retried forever with a message about the port."""
    import socket

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        raise UserError(f"{host!r} is not an address ({getattr(e, 'strerror', None) or e})", key=flag,
                        expected="an address of this machine: 0.0.0.0 (all), 127.0.0.1 (this machine only)") from None
    family, _, _, _, addr = infos[0]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((addr[0], 0))
    except OSError as e:
        raise UserError(f"can't listen on {host!r}: {e.strerror or e}", key=flag,
                        expected="an address of this machine: 0.0.0.0 (all), 127.0.0.1 (this machine only)") from None
