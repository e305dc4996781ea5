"""The composition root: the one module that knows every wing.

  default_registry()   every parameter, from each wing's declared PARAMS, named one by one (no importlib),
                       in the order the address space is listed (OSC map, OSCQuery)
  load_show()          a show file checked against that registry
  Show                 the show with its control surfaces attached (live values, presets, OSC, replay, MIDI)
  run, rehearse        the commands that play a show (check, bench, soak, ... are ops/, which builds on this)

Everything here points down (docs/architecture.md): control, show and the picture wings never import it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from installation.control import access, presets
from installation.control.midi import bindings as midi_bindings
from installation.control.midi import control as midi
from installation.control.surfaces import attach_surfaces
from installation.core.errors import UserError
from installation.core.params import Param, Registry
from installation.core.stopping import StopSignals
from installation.render import renderer
from installation.show import config, loop
from installation.show import params as show_params
from installation.show.config import ShowConfig
from installation.show.loop import RunOptions
from installation.vision import preprocess, segment

__all__ = ["RunOptions", "Show", "ShowConfig", "default_registry", "load_show"]

log = logging.getLogger("installation.show")


def default_registry(extra: Iterable[Param] = ()) -> Registry:
    """Every parameter the runtime declares, gathered from the modules that own them."""
    params: list[Param] = []
    for declared in (preprocess.PARAMS, segment.PARAMS, renderer.PARAMS, show_params.PARAMS, presets.PARAMS,
                     midi.PARAMS):
        params.extend(declared)
    params.extend(extra)
    return Registry(params)


def load_show(show: str | Path | None, registry: Registry | None = None) -> ShowConfig:
    """Read and validate a show file (against every wing's parameters unless a registry is given)."""
    return config.load_show(show, default_registry() if registry is None else registry,
                            {"osc": access.check_section, "midi": midi_bindings.check_section})


class Show(loop.Show):
    """A show with every wing attached: the registry of every parameter, outputs and health (the loop's
    own), and the control surfaces (control/surfaces.py attach_surfaces: live values, presets, OSC in and out,
    record and replay, MIDI)."""

    def __init__(self, cfg: ShowConfig, opts: RunOptions, registry: Registry | None = None, *,
                 inference_threads: int | None = None) -> None:
        super().__init__(cfg, opts, default_registry() if registry is None else registry,
                         inference_threads=inference_threads)

    def attach_surfaces(self) -> None:
        attach_surfaces(self.handle)  # the surfaces get the narrow handle, never the Show


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("show", nargs="?", default=None, help="a show file, or a name in show_configs/ (default)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="render offscreen through EGL, no display needed")
    mode.add_argument("--window", action="store_true", help="a window instead of fullscreen")
    p.add_argument("--frames", type=int, help="stop after N presented frames")
    p.add_argument("--seconds", type=float, help="stop after S seconds")
    p.add_argument("--record", type=Path, metavar="OUT.mp4", help="record what was shown")
    p.add_argument("--stats", type=Path, metavar="OUT.json", help="write timings and counters")
    p.add_argument("--lockstep", action="store_true",
                   help="process every source frame in order, none dropped (repeatable runs)")
    p.add_argument("--fast", action="store_true", help="don't pace video/synthetic sources to their frame rate")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
    p.add_argument("--fresh", action="store_true",
                   help="start from the show file's values: ignore the live values saved last time (for this run)")
    from installation.control.options import add_run_flags

    add_run_flags(p)  # --osc-*, --state


def set_values(items: list[str], registry: Registry | None = None) -> dict[str, Any]:
    """`--set NAME=VALUE ...` (run, rehearse, bench, soak): checked against the registry like a show's
    [params]; a mistake is a UserError naming the item."""
    from installation.show.config import check_params

    extra: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}", expected="NAME=VALUE")
        extra[name] = value
    return check_params(extra, default_registry() if registry is None else registry, None) if extra else {}


def _options(args: argparse.Namespace, registry: Registry) -> RunOptions:
    from installation.control.options import control_options
    from installation.render.displays import has_screen

    extra = set_values(args.set, registry)
    if args.stats is not None:
        writable_folder(Path(args.stats).parent, "--stats")
    if getattr(args, "state", None) is not None:
        writable_folder(Path(args.state), "--state")
    if getattr(args, "osc_host", None):
        listen_address(args.osc_host, "--osc-host")
    headless = args.headless or (not args.window and not has_screen())
    return RunOptions(headless=headless, frames=args.frames, seconds=args.seconds, record=args.record,
                      stats=args.stats, lockstep=args.lockstep, realtime=not args.fast,
                      fullscreen=False if args.window else None, extra_params=extra,
                      video=getattr(args, "video", None), state=getattr(args, "state", None),
                      venue=bool(getattr(args, "venue", False)), control=control_options(args))


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


def play(args: argparse.Namespace, rehearse: bool) -> int:
    from installation.core.chatter import quiet_opencv

    quiet_opencv()  # a camera that won't open is said by the source, once a retry, not by each OpenCV backend
    registry = default_registry()
    cfg = load_show(args.show, registry)
    opts = _options(args, registry)
    if rehearse and opts.video is None and cfg.source.kind == "camera":
        from installation.media.sample import ensure_sample_clip

        opts.video = ensure_sample_clip()
    if opts.video is not None and not Path(opts.video).is_file():
        raise UserError("video not found", file=opts.video)
    show = Show(cfg, opts, registry)
    stopping = StopSignals(show.stop)  # SIGTERM/SIGINT end the show within 2 s, whatever a thread is doing
    try:
        show.build()
        where = "offscreen (EGL)" if opts.headless else "in a window"
        slot = show.slot
        print(f"{cfg.name}: playing {show.source.name} {where}; model: "
              f"{slot.model.name if slot.model else 'none'}" + (f" [{slot.error}]" if slot.error else ""),
              flush=True)
        try:
            summary = show.run()
        except KeyboardInterrupt:
            summary = show.close()
    finally:
        stopping.close()
    lat = summary["latency_ms"]
    print(f"{summary['frames_presented']} frames, {summary['fps_mean']:.1f} fps, latency p50 {lat['p50']} ms "
          f"p95 {lat['p95']} ms, dropped {summary['dropped_total']}, faults {sum(summary['faults'].values())}")
    print(summary["health"]["governor"]["line"])  # what the governor gave up to keep the rate, and why
    if opts.record:
        rejected = summary["recorded_rejected"]
        print(f"recorded {summary['recorded_frames']} frames ({summary['recorded_seconds']:.1f} s) to {opts.record}"
              + (f"; {rejected} pictures rejected (not the recording's size)" if rejected else ""))
    if opts.stats:
        print(f"stats written to {opts.stats}")
    if not summary.get("source_frames_read") and not stopping.received:
        # a show that never saw its camera did not play (one stopped by SIGTERM before it could is not a failure)
        why = getattr(show.source, "last_error", "") or "no frame came"
        print(f"error: {show.source.name} never delivered a frame ({why})", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return play(args, rehearse=False)


def cmd_rehearse(args: argparse.Namespace) -> int:
    return play(args, rehearse=True)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("run", help="play a show from its source (the camera)")
    _add_run_flags(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("rehearse", help="play a show from recorded video instead of the camera")
    _add_run_flags(p)
    p.add_argument("--video", type=Path, help="the clip to play (default: the sample clip)")
    p.set_defaults(func=cmd_rehearse)
