"""`installation bench`: how fast the whole loop runs, headless, and how much the threads buy.

Four runs of the same show, same model session, same source pictures and same Renderer code:

- pipelined:   the show's own threads (source -> inference -> draw), the source unpaced: throughput.
- paced:       the same, the source paced to a camera's rate (60 fps): latency and drops at show speed.
- naive:       one thread that reads, preprocesses, infers, uploads and draws each frame in turn, as a
               first script would, by calling the same Workers.process() and Show.view() (a show built
               with no inference thread of its own, `inference_threads=0`): the ratio to it
               measures the pipelining and nothing else.
- naive_paced: that thread fed by the paced camera (the newest picture when it asks): the latency a
               first script gives at show speed, beside the paced run's. Unpaced, the naive loop's
               latency is one frame's work and nothing else (each picture is taken the moment the loop
               is ready for it), which no camera allows.

Throughput counts frames freshly inferred and presented; frames whose output was reused (the still-
room skip) are counted apart. Every setting, the device, the versions and the providers the session
really used go into the JSON, so a row in docs/performance.md can be reproduced and compared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.app import RunOptions, Show, default_registry, load_show, set_values
from installation.core.errors import UserError
from installation.core.frames import Frame
from installation.core.timing import percentiles
from installation.inference.models import Model, load_for_rate, load_model
from installation.media.sources import BaseReader, Inline, Paced, Reconnecting, VideoReader, video_source
from installation.ops.bench_report import device_info, plot, versions
from installation.vision.preprocess import ChainState

log = logging.getLogger("installation.bench")

RUNS = ("pipelined", "paced", "naive", "naive_paced")
PACED = ("paced", "naive_paced")  # measured in the first round only: latency, not the ratio
NAIVE = ("naive", "naive_paced")  # one thread, the naive session


# ---- the source ----------------------------------------------------------------------------------

def load_clip(path: Path, frames: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Up to `frames` RGB pictures of a clip, decoded once: the runs then measure the loop, not
    the video decoder (a camera hands over decoded pictures too)."""
    cap = cv2.VideoCapture(str(path))
    out: list[np.ndarray] = []
    while len(out) < frames:
        ok, bgr = cap.read()
        if not ok or bgr is None:
            break
        if size is not None and (bgr.shape[1], bgr.shape[0]) != size:
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    if not out:
        raise UserError("can't read video", file=path, expected="a video file OpenCV can decode")
    return out


class ClipReader(BaseReader):
    """Decoded pictures played in a loop (the bench's clip, decoded up front)."""

    def __init__(self, pictures: list[np.ndarray], fps: float | None = None) -> None:
        self.name = "clip"
        self.pictures = pictures
        self.fps = fps or 0.0
        self.size = (pictures[0].shape[1], pictures[0].shape[0])
        self.n = 0

    def read(self, stop: threading.Event) -> tuple[np.ndarray, float]:
        i, self.n = self.n, self.n + 1
        return self.pictures[i % len(self.pictures)], i / (self.fps or 30.0)


def clip_source(pictures: list[np.ndarray], fps: float | None = None) -> Reconnecting | Inline:
    """Paced (fps given): a thread hands one picture over every 1/fps seconds, latest wins, like a camera.
    Unpaced: recv() hands the next one over at once, stamped as captured then, so no picture waits in a
    slot while the timing runs."""
    reader = ClipReader(pictures, fps)
    return Reconnecting(Paced(reader)) if fps is not None else Inline(reader)


class TakenNow:
    """The pipelined run's file source (decoded on its thread, one picture ahead of demand: lockstep), each
    picture stamped as captured when a worker takes it. A camera faster than the loop would have a fresh
    picture at that moment; the decoded one only waited because a file can't be read faster than it is
    asked for, and counting that wait made the pipelined latency 30-45 ms worse than the show's own. The
    naive run's pictures are stamped when decoded on demand: both runs measure from the moment the loop
    receives a picture, as the unpaced clip source does."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def recv(self, timeout: float | None = None) -> Frame | None:
        frame = self._source.recv(timeout)
        return None if frame is None else replace(frame, t_capture=time.monotonic())

    def __getattr__(self, name: str) -> Any:  # everything else is the source's own
        return getattr(self._source, name)


# ---- a stand-in model of a given size --------------------------------------------------------------

BENCH_MODELS = Path("runs") / "bench_models"


def make_unet_model(width: int, size: int, chain: str = "grey_blur_downscale",
                    folder: Path | None = None) -> Path:
    """A model folder holding pix2pix's U-Net (our networks.py, 8 down-blocks at 256, 9 at 512) at
    this width, with its initial weights: what the trainer would export, minus the training. Speed
    depends on the shapes alone, so bench rows for sizes nobody has trained yet use these."""
    folder = Path(folder or BENCH_MODELS / f"unet_w{width}_{size}")
    if (folder / "model.onnx").is_file() and (folder / "model.toml").is_file():
        return folder
    import torch

    from installation.inference.models import ModelCard
    from installation.training.export import to_onnx
    from installation.training.networks import default_depth, define_G
    from installation.vision.preprocess import Chain

    torch.manual_seed(0)
    G = define_G("unet", width=width, depth=default_depth(size)).eval()
    folder.mkdir(parents=True, exist_ok=True)
    to_onnx(G, size, folder / "model.onnx")
    ModelCard(name=folder.name, size=(size, size), chain=Chain.from_spec(chain, size),
              description=f"U-Net width {width} at {size}, untrained (bench stand-in)",
              provenance={"made_by": "installation bench --unet"}).save(folder)
    return folder


def _unet_spec(s: str) -> tuple[int, int]:
    w, _, size = s.partition("@")
    return int(w), int(size or 256)


# ---- one run ---------------------------------------------------------------------------------------

class BenchShow(Show):
    """The show with the bench's source, a model session shared by all runs, and a measuring window
    that opens after the warm-up frames. The naive run's show starts no inference thread: run_naive()
    hands each frame to its workers on the main thread."""

    def __init__(self, cfg: Any, opts: RunOptions, source: Any, model: Model | None,
                 warmup: int, naive: bool = False) -> None:
        super().__init__(cfg, opts, default_registry(), inference_threads=0 if naive else None)
        self._bench_source = source
        self._bench_model = model
        self.warmup = warmup
        self.naive = naive
        self.t_window = 0.0
        self.t_end = 0.0
        self._drops0 = (0, 0)
        self._cpu0 = 0.0

    def load_initial_model(self) -> None:
        if self._bench_model is not None:
            self.slot.take(self._bench_model)
        else:
            super().load_initial_model()

    def open_source(self) -> Any:
        return self._bench_source

    def view(self, result: Any) -> None:
        super().view(result)
        if result is not None and self.stats.counters["frames_presented"] == self.warmup and not self.t_window:
            self.open_window()

    def open_window(self) -> None:
        """Forget the warm-up: fresh stats from here on (stage timers, latency, counters)."""
        self.fresh_stats()
        self.t_window = time.monotonic()
        self._cpu0 = time.process_time()
        self._drops0 = (self.source.dropped, self.results.dropped)

    def run_naive(self, frames: int) -> None:
        """One thread: read, preprocess, infer, upload, draw, present; then the next frame."""
        state = ChainState()
        prev: Any = None
        while self.stats.counters["frames_presented"] < frames or not self.t_window:
            self.update()
            frame = self.source.recv(timeout=1.0)
            if frame is None:
                continue
            result = self.workers.process(frame, self.store.snapshot(), state, prev)
            if result is None:
                continue
            if result.layers.output is not None:
                prev = result.layers.output
            self.view(result)

    def measure(self) -> dict[str, Any]:
        self.t_end = self.t_end or time.monotonic()
        st = self.stats
        s = st.to_dict()
        c = s["counters"]
        presented = c.get("frames_presented", 0)
        reused = c.get("frames_reused", 0)
        fresh = presented - reused
        span = max(self.t_end - self.t_window, 1e-9)
        d_src = self.source.dropped - self._drops0[0]
        d_res = self.results.dropped - self._drops0[1]
        cpu_s = time.process_time() - self._cpu0
        return {
            "fps": round(fresh / span, 3),
            # CPU seconds the whole process spent per presented frame: comparable across runs even
            # when other programs share the machine, unlike wall-clock fps
            "cpu_ms_per_frame": round(cpu_s * 1000 / max(presented, 1), 3),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "frames_presented": presented,
            "frames_fresh": fresh,
            "frames_reused": reused,
            "frames_inferred": c.get("frames_inferred", 0),
            "seconds": round(span, 3),
            "latency_ms": percentiles(st.latency_ms),
            "stage_ms": s["stage_ms"],
            "dropped": {"source": d_src, "inference": d_res, "total": d_src + d_res},
            "faults": s["faults"],
            "latency_samples_ms": [round(x, 3) for x in st.latency_ms],
        }


def run_once(kind: str, cfg: Any, pictures: list[np.ndarray], model: Model | None, frames: int, warmup: int,
             paced_fps: float, extra_params: dict[str, Any], video: Path | None = None) -> dict[str, Any]:
    """One run. With `video`, the unpaced runs read the file as a user's loop would: the naive run
    decodes each picture inline; the pipelined run decodes on the source thread, one picture ahead
    of demand (lockstep source: a free-running decoder would only burn a core on dropped frames)."""
    naive = kind in NAIVE
    source: Any
    if video is not None and kind == "naive":
        source = Inline(VideoReader(video, loop=True))  # decoded on the caller's thread, as cap.read() would
    elif video is not None and kind == "pipelined":
        source = TakenNow(video_source(video, loop=True, realtime=False, lockstep=True))
    else:
        source = clip_source(pictures, fps=paced_fps if kind in PACED else None)
    # lockstep only for the naive run: its segmenter (if any) must answer for this frame before the
    # model runs, as a single-threaded script would wait for it
    opts = RunOptions(headless=True, frames=frames + warmup, lockstep=naive, realtime=kind in PACED,
                      extra_params=dict(extra_params))
    show = BenchShow(cfg, opts, source, model, warmup, naive=naive)
    show.build()
    gl = {"gl_renderer": show.display.renderer_name, "gl_version": str(show.display.ctx.info.get("GL_VERSION"))}
    if not warmup:
        show.open_window()
    if naive:
        try:
            show.run_naive(frames)
            show.t_end = time.monotonic()
        finally:
            show.close()
    else:
        show.opts.frames = None
        t = threading.Thread(target=_stop_after, args=(show, frames, time.monotonic() + 600), daemon=True)
        t.start()
        show.run()  # closes the show when it returns
    out = show.measure()
    out.update(gl, workers=1 if naive else show.workers.in_use,
               providers=list(show.slot.model.backend.providers) if show.slot.model else [],
               model_error=show.slot.error or None)
    return out


def _stop_after(show: BenchShow, frames: int, deadline: float) -> None:
    """Ends a threaded run once the window holds `frames` presented frames (the stats are swapped at
    the window's start, so Show.run's own frame count can't be used)."""
    while time.monotonic() < deadline and not show.stopped:
        if show.t_window and show.stats.counters["frames_presented"] >= frames:
            show.t_end = time.monotonic()
            break
        time.sleep(0.002)
    show.stop()


@dataclass
class BenchConfig:
    show: str | None = None
    frames: int = 300
    warmup: int = 30
    model: str | None = None
    backend: str = "onnx"
    providers: str | None = None
    threads: int | None = None
    # None: the naive run shares the pipelined runs' session, as the ratio's definition asks; N: it gets
    # a session of its own with N intra-op threads (0: every core), to compare against its best
    naive_threads: int | None = None
    workers: int | None = None  # inference workers of the threaded runs (None: the show's, "auto")
    precision: str | None = None  # None: the show's [model] precision ("auto": the int8 twin on the CPU)
    video: Path | None = None
    clip_frames: int = 120
    width: int = 1280
    height: int = 720
    content_size: int | None = None
    paced_fps: float = 60.0
    runs: tuple[str, ...] = RUNS
    params: dict[str, Any] = field(default_factory=dict)
    preload: bool = False  # True: decode the clip once up front (measures the loop without the decoder)
    rounds: int = 3  # pipelined and naive alternate this many times; the headline is the median ratio


def bench(bc: BenchConfig) -> dict[str, Any]:
    from installation.media.sample import ensure_sample_clip

    registry = default_registry()
    cfg = load_show(bc.show, registry)
    if bc.model is not None:
        cfg.model.path = Path(bc.model)
    if bc.providers is not None:
        cfg.model.providers = bc.providers
    if bc.workers is not None:
        cfg.model.workers = bc.workers
    if bc.precision is not None:
        cfg.model.precision = bc.precision  # type: ignore[assignment]
    cfg.render.width, cfg.render.height = bc.width, bc.height
    cfg.governor.mode = "off"  # the runs compare loops doing the same work: nothing given up in any of them
    if bc.content_size:
        cfg.render.content_size = bc.content_size
    video = Path(bc.video) if bc.video else ensure_sample_clip()
    pictures = load_clip(video, bc.clip_frames)
    model = None
    if cfg.model.path is not None:
        # planned as for an unpaced source (the pipelined run's): the show's own rule, models.load_for_rate
        model = load_for_rate(cfg.model.path, cfg.model.providers, cfg.model.workers, source_fps=None,
                              backend=bc.backend, threads=bc.threads, precision=cfg.model.precision)
    naive_model = model
    if model is not None and bc.naive_threads is not None:
        naive_model = load_model(cfg.model.path, cfg.model.providers, backend=bc.backend, threads=bc.naive_threads,
                                 precision=cfg.model.precision)
    # On a shared machine the speed drifts between runs by more than the effect measured, so pipelined
    # and naive alternate (order swapped each round) and each round gives its own ratio.
    rounds: list[dict[str, Any]] = []
    for i in range(max(1, bc.rounds)):
        order = [k for k in RUNS if k in bc.runs and (k not in PACED or i == 0)]
        if i % 2:
            order.reverse()
        this: dict[str, Any] = {}
        for kind in order:
            log.info("bench: round %d, %s run, %d frames after %d warm-up", i + 1, kind, bc.frames, bc.warmup)
            session = naive_model if kind in NAIVE else model
            this[kind] = run_once(kind, cfg, pictures, session, bc.frames, bc.warmup, bc.paced_fps, bc.params,
                                  video=None if bc.preload else video)
        rounds.append(this)
    ratios = [rd["pipelined"]["fps"] / rd["naive"]["fps"] for rd in rounds
              if "pipelined" in rd and "naive" in rd and rd["naive"]["fps"] > 0]
    ratio = round(float(np.median(ratios)), 3) if ratios else None
    runs: dict[str, Any] = {}  # per kind: the round with the median speed, whole
    for kind in RUNS:
        mine = sorted((rd[kind] for rd in rounds if kind in rd), key=lambda r: r["fps"])
        if mine:
            runs[kind] = mine[len(mine) // 2]
    pipe, naive = runs.get("pipelined"), runs.get("naive")
    first = next(iter(runs.values()), {})
    backend = getattr(model.backend, "session", None) if model else None
    report: dict[str, Any] = {
        "headline": (f"pipelined {pipe['fps']:.1f} fps vs naive {naive['fps']:.1f} fps (median of "
                     f"{len(ratios)} rounds): {ratio:.2f}x" if ratio and pipe and naive else None),
        "ratio_pipelined_to_naive": ratio,
        "show_speed": show_speed(runs, bc.paced_fps),
        "ratios_per_round": [round(r, 3) for r in ratios],
        "fps_per_round": [{k: v["fps"] for k, v in rd.items()} for rd in rounds],
        "settings": {
            "show": cfg.name, "show_file": str(cfg.path) if cfg.path else None,
            "model": str(cfg.model.path) if cfg.model.path else None,
            "model_size": list(model.card.size) if model else None,
            "model_graph": str(model.graph) if model else None, "precision": model.precision if model else None,
            "backend": bc.backend, "providers_requested": cfg.model.providers,
            "ort_intra_op_threads": (backend.get_session_options().intra_op_num_threads if backend else None),
            "naive_session": ("shared with the pipelined runs" if naive_model is model else
                              f"its own, {bc.naive_threads} intra-op threads (0: every core)"),
            "inference_workers": first.get("workers"),
            "source": str(video), "source_size": [pictures[0].shape[1], pictures[0].shape[0]],
            "source_read": "preloaded" if bc.preload else "decoded from the file in every run but the paced one",
            "source_pictures_preloaded": len(pictures),
            "display_size": [bc.width, bc.height], "content_size": cfg.render.content_size,
            "frames": bc.frames, "warmup": bc.warmup, "paced_fps": bc.paced_fps, "runs": list(bc.runs),
            "rounds": bc.rounds,
            "params": {**cfg.params, **bc.params},
            "seg_mode": {**cfg.params, **bc.params}.get("seg/mode", "none"),
            "env": {k: os.environ.get(k) for k in ("LP_NUM_THREADS", "INSTALLATION_ORT_THREADS",
                                                   "INSTALLATION_BACKEND", "OMP_NUM_THREADS")},
            "command": " ".join(["installation", *sys.argv[1:]]) if sys.argv else None,
        },
        "providers": first.get("providers", []),
        "device": {**device_info(), "gl_renderer": first.get("gl_renderer")},
        "versions": {**versions(), "gl": first.get("gl_version")},
        "runs": runs,
    }
    return report


def show_speed(runs: dict[str, Any], fps: float) -> str | None:
    """The two loops' latency with the same camera feeding them: the comparison a visitor feels."""
    paced, naive = runs.get("paced"), runs.get("naive_paced")
    if not (paced and naive):
        return None

    def said(r: dict[str, Any]) -> str:
        lat = r["latency_ms"]
        return (f"p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} ms, {r['fps']:.1f} fps, "
                f"{r['dropped']['total']} dropped")

    return f"at a {fps:g} fps camera: pipelined {said(paced)}; naive {said(naive)}"


def cmd_bench(args: argparse.Namespace) -> int:
    runs = tuple(r for r in RUNS if r not in set(args.skip))
    bc = BenchConfig(show=args.show, frames=args.frames, warmup=args.warmup, model=args.model,
                     backend=args.backend, providers=args.providers, threads=args.threads,
                     naive_threads=args.naive_threads, workers=args.workers, precision=args.precision,
                     video=args.video,
                     clip_frames=args.clip_frames, width=args.size[0], height=args.size[1],
                     content_size=args.content_size, paced_fps=args.paced_fps, runs=runs,
                     params=set_values(args.set), rounds=args.rounds, preload=args.preload)
    if args.unet:
        bc.model = str(make_unet_model(*args.unet))
    report = bench(bc)
    for name, r in report["runs"].items():
        lat = r["latency_ms"]
        print(f"{name:>11}: {r['fps']:7.1f} fps  latency p50 {lat['p50']:7.1f} p95 {lat['p95']:7.1f} "
              f"p99 {lat['p99']:7.1f} ms  dropped {r['dropped']['total']}  reused {r['frames_reused']}  "
              + "  ".join(f"{k} {v['p50']:.1f}" for k, v in r["stage_ms"].items()))
    dev = report["device"]
    print(f"device: CPU {dev['cpu']}, {dev['cores']} cores" + (f"; GPU {dev['gpu']}" if dev["gpu"] else "")
          + f"; GL {dev['gl_renderer']}; providers: {', '.join(report['providers'])}"
          + (f"; model {report['settings']['precision']}" if report['settings']['precision'] else ""))
    for line in (report["headline"], report["show_speed"]):
        if line:
            print(line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"written {args.json}")
    if args.plot:
        plot(report, args.plot)
        print(f"plotted {args.plot}")
    return 0


def _size(s: str) -> tuple[int, int]:
    w, _, h = s.lower().partition("x")
    return int(w), int(h)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("bench", help="time the whole loop headless: the show's threads vs a naive loop, "
                                     "unpaced and at a camera's rate")
    p.add_argument("show", nargs="?", default=None, help="a show file, or a name in show_configs/ (default)")
    p.add_argument("--frames", type=int, default=300, help="frames measured per run (after the warm-up)")
    p.add_argument("--warmup", type=int, default=30, help="frames presented before measuring")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write every figure and setting")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="latency distribution and stage costs")
    p.add_argument("--model", help="a model folder or .onnx instead of the show's")
    p.add_argument("--unet", type=_unet_spec, metavar="WIDTH@SIZE",
                   help="bench an untrained U-Net of this width and size instead (e.g. 64@256), made once "
                        "under runs/bench_models/")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx",
                   help="ONNX Runtime, or PyTorch (fp16 + CUDA graphs on a GPU)")
    p.add_argument("--providers", help="ONNX Runtime providers, e.g. cuda or tensorrt,cuda (default: the show's)")
    p.add_argument("--threads", type=int,
                   help="ONNX Runtime intra-op threads (default: ONNX Runtime's own, every core)")
    p.add_argument("--naive-threads", type=int, metavar="N",
                   help="give the naive run a session of its own with N intra-op threads (0: every core) "
                        "instead of the pipelined runs' session: the ratio against the naive loop at its best")
    p.add_argument("--precision", choices=("auto", "fp32", "int8"),
                   help="which graph of the model folder (default: the show's [model] precision, 'auto': the "
                        "int8 twin from installation quantize where ONNX Runtime runs on the CPU)")
    p.add_argument("--workers", type=int,
                   help="inference workers of the threaded runs (default: the show's, 'auto': 2 on a 2+ core CPU)")
    p.add_argument("--video", type=Path, help="the clip to play (default: the 1280x720 sample clip)")
    p.add_argument("--clip-frames", type=int, default=120, help="pictures of the clip decoded up front")
    p.add_argument("--size", type=_size, default=(1280, 720), metavar="WxH", help="offscreen target size")
    p.add_argument("--content-size", type=int, help="the square composite's side (default: the show's)")
    p.add_argument("--paced-fps", type=float, default=60.0, help="the paced run's source rate")
    p.add_argument("--skip", action="append", default=[], choices=RUNS, help="leave a run out")
    p.add_argument("--preload", action="store_true",
                   help="decode the clip once up front: time the loop without the video decoder")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternate pipelined and naive this many times; the headline ratio is their median")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
    p.set_defaults(func=cmd_bench)


def main(argv: list[str] | None = None) -> int:
    """`python -m installation.bench ...`: the bench alone, without the other commands' imports."""
    parser = argparse.ArgumentParser(prog="installation")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e.render()}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
