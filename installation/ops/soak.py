"""`installation soak SHOW --minutes M`: play a show headless at full speed and watch its memory.

A show that leaks a few kilobytes a frame dies after days on the wall, long after anyone tested it. The
soak samples the resident memory (RSS) over the run, fits a line to the second half (the first half is
warm-up: allocator pools, caches, rings filling) and fails, exit 1, when the slope exceeds a bound.
`--plant-leak` leaks on purpose, every frame, to show that the bound catches a leak.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from installation.core.cpu import cpu_cores, cpu_name
from installation.core.errors import UserError
from installation.core.files import atomic_write
from installation.show.health import rss_mb

if TYPE_CHECKING:
    from installation.app import Show

log = logging.getLogger("installation.soak")

DEFAULT_MAX_SLOPE = 30.0  # MiB per hour over the second half; a real leak of 1 KiB a frame at 30 fps is 100
LEAK_BYTES = 16 * 1024  # what --plant-leak keeps per presented frame


class MemorySampler:
    """A show control that samples RSS every `every_s` and, with plant_leak, leaks once per frame."""

    def __init__(self, every_s: float = 1.0, plant_leak: bool = False, on_sample: Any = None) -> None:
        self.every_s = every_s
        self.plant_leak = plant_leak
        self.samples: list[tuple[float, float, int]] = []  # (seconds, RSS MiB, frames presented)
        self.on_sample = on_sample
        self._t0 = time.monotonic()
        self._t_next = 0.0
        self._frames_seen = 0
        self._leak: list[bytes] = []

    def update(self, show: Show) -> None:
        n = show.stats.counters["frames_presented"]
        if self.plant_leak and n > self._frames_seen:
            # bytes made by repetition are written out, so they count in RSS at once
            self._leak.extend(b"\xa5" * LEAK_BYTES for _ in range(n - self._frames_seen))
        self._frames_seen = n
        t = time.monotonic() - self._t0
        if t >= self._t_next:
            self._t_next = t + self.every_s
            self.samples.append((round(t, 3), round(rss_mb(), 3), n))
            if self.on_sample is not None:
                self.on_sample(self)

    def close(self) -> None:
        self._leak.clear()


def slope_mib_per_h(samples: list[tuple[float, float, int]]) -> float:
    """The least-squares slope of RSS over the second half of the run, MiB per hour."""
    if len(samples) < 4:
        return float("nan")
    t_end = samples[-1][0]
    half = [(t, m) for t, m, _ in samples if t >= t_end / 2]
    if len(half) < 2:
        return float("nan")
    t, m = np.array(half).T
    return float(np.polyfit(t / 3600.0, m, 1)[0])


def machine() -> dict[str, Any]:
    return {"cpu": cpu_name(), "cores": cpu_cores(), "python": platform.python_version(),
            "system": platform.platform()}


def report(sampler: MemorySampler, args: argparse.Namespace, summary: dict[str, Any] | None) -> dict[str, Any]:
    s = sampler.samples
    slope = slope_mib_per_h(s)
    frames = s[-1][2] if s else 0
    out: dict[str, Any] = {
        "show": args.show,
        "minutes": args.minutes,
        "plant_leak": args.plant_leak,
        "max_slope_mib_per_h": args.max_slope,
        "slope_mib_per_h": None if np.isnan(slope) else round(slope, 3),
        "frames": frames,
        "fps_mean": round(frames / s[-1][0], 2) if s and s[-1][0] > 0 else 0.0,
        "rss_start_mib": s[0][1] if s else None,
        "rss_end_mib": s[-1][1] if s else None,
        "rss_max_mib": max(m for _, m, _ in s) if s else None,
        "machine": machine(),
        "render": list(args.render), "content_size": args.content,
        "samples": s,
    }
    if summary is not None:
        out["gl_renderer"] = summary.get("gl_renderer")
        out["faults"] = summary.get("faults")
        out["model"] = summary.get("model")
        out["dropped_total"] = summary.get("dropped_total")
        out["finished"] = True
    else:
        out["finished"] = False
    out["ok"] = bool(summary is not None and frames > 0 and out["slope_mib_per_h"] is not None
                     and out["slope_mib_per_h"] <= args.max_slope)
    return out


def plot(data: dict[str, Any], png: Path) -> Path:
    """The memory curve, with the second-half fit, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = np.array(data["samples"], dtype=np.float64)
    t_min, rss = s[:, 0] / 60.0, s[:, 1]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.plot(t_min, rss, lw=1, label="RSS")
    half = s[:, 0] >= s[-1, 0] / 2
    if half.sum() >= 2 and data.get("slope_mib_per_h") is not None:
        k, c = np.polyfit(s[half, 0] / 3600.0, rss[half], 1)
        ax.plot(t_min[half], k * s[half, 0] / 3600.0 + c, "r--", lw=1.5,
                label=f"second half: {k:+.2f} MiB/h (bound {data['max_slope_mib_per_h']:g})")
    m = data.get("machine", {})
    ax.set_title(f"soak: {data['frames']} frames at {data['fps_mean']:.0f} fps, {m.get('cores')} cores, "
                 f"{data.get('gl_renderer') or 'GL'}"[:100], fontsize=9)
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MiB)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit() and int(w) >= 16 and int(h) >= 16):
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT")
    return int(w), int(h)


def cmd_soak(args: argparse.Namespace) -> int:
    from installation.app import RunOptions, Show, default_registry, load_show, set_values

    if args.minutes <= 0:
        raise UserError("--minutes must be more than 0", key="--minutes", expected="a positive number")
    registry = default_registry()
    cfg = load_show(args.show, registry)
    cfg.render.width, cfg.render.height = args.render
    cfg.render.content_size = args.content
    if cfg.source.kind == "camera":  # no camera is needed to soak the rest of the show
        cfg.source.kind = "synthetic"
    if cfg.source.kind == "synthetic":
        cfg.source.width, cfg.source.height = args.source_size
    cfg.osc.enabled = False
    opts = RunOptions(headless=True, seconds=args.minutes * 60.0, realtime=False,
                      extra_params=set_values(args.set, registry))
    show = Show(cfg, opts, registry)
    every = args.sample_s or max(0.25, min(5.0, args.minutes * 60.0 / 600))

    def checkpoint(sampler: MemorySampler) -> None:
        if args.json and len(sampler.samples) % 60 == 0:  # a long soak that dies still leaves its curve
            _write(args.json, report(sampler, args, None))

    sampler = MemorySampler(every, args.plant_leak, on_sample=checkpoint)
    show.parts.append(sampler)
    show.build()
    print(f"soak: {cfg.name} for {args.minutes:g} min, headless at full speed, render {args.render[0]}x"
          f"{args.render[1]}, content {args.content}, source {show.source.name}, model "
          f"{show.slot.model.name if show.slot.model else 'none'}{', planted leak' if args.plant_leak else ''}")
    summary = show.run()
    data = report(sampler, args, summary)
    if args.json:
        _write(args.json, data)
    if args.png:
        plot(data, args.png)
    verdict = "ok" if data["ok"] else "FAIL"
    print(f"soak {verdict}: {data['frames']} frames, {data['fps_mean']} fps, RSS {data['rss_start_mib']} -> "
          f"{data['rss_end_mib']} MiB, second-half slope {data['slope_mib_per_h']} MiB/h "
          f"(bound {args.max_slope:g})")
    return 0 if data["ok"] else 1


def _write(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(data, indent=1) + "\n", sync=False)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("soak", help="play a show headless at full speed and fail if its memory keeps growing")
    p.add_argument("show", nargs="?", default=None)
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the memory curve and verdict")
    p.add_argument("--png", type=Path, metavar="OUT.png", help="plot the memory curve")
    p.add_argument("--plant-leak", action="store_true",
                   help=f"leak {LEAK_BYTES // 1024} KiB every frame on purpose (to test the soak itself)")
    p.add_argument("--max-slope", type=float, default=DEFAULT_MAX_SLOPE, metavar="MIB_PER_H",
                   help=f"fail above this RSS growth over the second half (default {DEFAULT_MAX_SLOPE:g} MiB/h)")
    p.add_argument("--render", type=_size, default=(320, 180), metavar="WxH", help="offscreen size (320x180)")
    p.add_argument("--content", type=int, default=128, help="composite resolution (128)")
    p.add_argument("--source-size", type=_size, default=(320, 180), metavar="WxH",
                   help="synthetic source size, used when the show has a camera (320x180)")
    p.add_argument("--sample-s", type=float, default=0.0, help="seconds between memory samples (auto)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
    p.set_defaults(func=cmd_soak)
