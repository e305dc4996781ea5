"""The composition root: the one module that knows every wing. It turns the command line into a show
(the registry gathered from each wing's PARAMS, show.params), builds the Show with its outputs, health
and control surfaces, and holds the `run`, `rehearse` and `check` commands.

Everything below it points down (docs/architecture.md); nothing imports this module but cli.py.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.params import Registry
from installation.inference.models import (
    Model,
    choose_providers,
    load_model,
    plan_for_rate,
)
from installation.show.config import ShowConfig, load_show
from installation.show.loop import RunOptions, Show
from installation.show.params import default_registry

log = logging.getLogger("installation.show")


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
    from installation.control.osc import add_run_flags

    add_run_flags(p)  # --osc-*, --state


def _options(args: argparse.Namespace, registry: Registry) -> RunOptions:
    from installation.control.osc import run_options as osc_run_options
    from installation.render.renderer import has_screen
    from installation.show.config import check_params

    extra = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}", expected="NAME=VALUE")
        extra[name] = value
    extra = check_params(extra, registry, None) if extra else {}
    from installation.ops.showcheck import listen_address, writable_folder

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
                      video=getattr(args, "video", None), fresh=getattr(args, "fresh", False),
                      **osc_run_options(args))


def play(args: argparse.Namespace, rehearse: bool) -> int:
    registry = default_registry()
    cfg = load_show(args.show, registry)
    opts = _options(args, registry)
    if rehearse and opts.video is None and cfg.source.kind == "camera":
        from installation.media.sample import ensure_sample_clip

        opts.video = ensure_sample_clip()
    if opts.video is not None and not Path(opts.video).is_file():
        raise UserError("video not found", file=opts.video)
    show = Show(cfg, opts, registry)
    signal.signal(signal.SIGTERM, lambda *_: show.stop())
    show.build()
    where = "offscreen (EGL)" if opts.headless else "in a window"
    print(f"{cfg.name}: playing {show.source.name} {where}; model: "
          f"{show.model.name if show.model else 'none'}" + (f" [{show.model_error}]" if show.model_error else ""))
    try:
        summary = show.run()
    except KeyboardInterrupt:
        summary = show.close()
    lat = summary["latency_ms"]
    print(f"{summary['frames_presented']} frames, {summary['fps_mean']:.1f} fps, latency p50 {lat['p50']} ms "
          f"p95 {lat['p95']} ms, dropped {summary['dropped_total']}, faults {sum(summary['faults'].values())}")
    if opts.record:
        rejected = summary["recorded_rejected"]
        print(f"recorded {summary['recorded_frames']} frames ({summary['recorded_seconds']:.1f} s) to {opts.record}"
              + (f"; {rejected} pictures rejected (not the recording's size)" if rejected else ""))
    if opts.stats:
        print(f"stats written to {opts.stats}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return play(args, rehearse=False)


def cmd_rehearse(args: argparse.Namespace) -> int:
    return play(args, rehearse=True)


def _workers_plan(cfg: ShowConfig, model: Model) -> str:
    """What `[model] workers` will come to with this show's source, in words (for `check`)."""
    if cfg.model.workers != "auto":
        return f"{cfg.model.workers} (set in the show)"
    if cfg.model.then:
        return "1 (chained models take one frame at a time)"
    s = cfg.source
    fps = s.fps
    if s.kind == "video" and s.video is not None:
        from installation.media.sources import VideoSource

        fps = VideoSource(s.video).fps
    try:
        n, ms = plan_for_rate(model, fps)
    except Exception as e:
        raise UserError(f"the model fails a trial inference: {type(e).__name__}: {str(e).strip().splitlines()[0]}",
                        file=model.path, expected="a graph whose input matches its card") from None
    if ms is None:
        return "1 (a GPU takes one frame at a time)"
    return f"{n} ({ms:.1f} ms an inference on every core, the source at {fps:g} fps)"


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a show and say what it would use. A missing or broken model is an error here."""
    from installation.media.sources import list_cameras
    from installation.render.renderer import list_screens

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
        model = load_model(cfg.model.path, cfg.model.providers)
        models = [model, *(load_model(p, cfg.model.providers) for p in cfg.model.then)]
        c = model.card
        print(f"model: {c.name} ({model.path}), input {c.size[1]}x{c.size[0]} {c.layout} range {c.value_range}"
              + (" [card inferred from the graph]" if c.inferred else ""))
        print(f"preprocessing: {' -> '.join(st.kind for st in c.chain.steps)}")
        print(f"inference: {', '.join(model.backend.providers)}")
        print(f"frames in flight: {_workers_plan(cfg, model)}")
    print(f"providers available: {', '.join(providers)}")
    screens = list_screens()
    print(f"displays: {'; '.join(screens) if screens else 'none (headless: EGL offscreen)'}")
    cams = list_cameras()
    print(f"cameras: {', '.join(cams) if cams else 'none found'}")
    from installation.ops.rig import check_lines

    print("\n".join(check_lines(cfg)))  # NDI sources, virtual cameras, MIDI ports (rig.py)
    from installation.control.osc import exposure_lines

    print("\n".join(exposure_lines(cfg)))  # the ports, who may send, writes, keys: the show's exposure
    from installation.ops.showcheck import report

    return report(cfg, registry, models, screens, getattr(args, "state", None))


def add_commands(sub: Any) -> None:
    p = sub.add_parser("run", help="play a show from its source (the camera)")
    _add_run_flags(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("rehearse", help="play a show from recorded video instead of the camera")
    _add_run_flags(p)
    p.add_argument("--video", type=Path, help="the clip to play (default: the sample clip)")
    p.set_defaults(func=cmd_rehearse)
    p = sub.add_parser("check", help="validate a show and print what it would use; exit 1: it will not work")
    p.add_argument("show", nargs="?", default=None)
    p.add_argument("--state", type=Path, metavar="DIR", help="the show's state folder (default: the show's own)")
    p.set_defaults(func=cmd_check)
