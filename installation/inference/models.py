"""Model folders and their cards, and the inference backends that run them.

A model folder is `model.onnx` + `model.toml` (the card: input size, layout, value range, the
preprocessing chain, provenance; schema in docs/model-card.md). A bare .onnx from another trainer is
accepted too: its card is inferred from the graph (pix2pix conventions: NCHW, [-1, 1], RGB).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from installation.core.cpu import cpu_cores, cpu_name  # noqa: F401  (cpu_name: quantize names the CPU by it)
from installation.core.errors import UserError
from installation.core.tomlout import preprocess_tables, toml_table
from installation.core.tomlout import toml_value as _tv
from installation.inference.twin import Verdict, cached_verdict, judge
from installation.vision.preprocess import CARD_SCHEMA_VERSION, Chain, ChainError, from_tensor, to_tensor

log = logging.getLogger("installation.models")

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"tensorrt": PROVIDER_ORDER[0], "trt": PROVIDER_ORDER[0], "cuda": PROVIDER_ORDER[1],
                    "cpu": PROVIDER_ORDER[2]}


@dataclass
class ModelCard:
    name: str
    size: tuple[int, int]  # (height, width) of the model's input
    chain: Chain
    input_name: str = "input"
    output_name: str = "output"
    layout: str = "NCHW"  # or "NHWC"
    value_range: tuple[float, float] = (-1.0, 1.0)
    output_range: tuple[float, float] = (-1.0, 1.0)
    description: str = ""
    inferred: bool = False  # True when no model.toml existed and the graph told us
    provenance: dict[str, Any] = field(default_factory=dict)
    # the folder's 8-bit twin for the CPU (`installation quantize`): its file, the sha256 of the model.onnx it
    # was made from, and how far its pictures are from that model's; empty: there is none
    int8: dict[str, Any] = field(default_factory=dict)

    def to_toml(self) -> str:
        """The card as TOML text (schema documented in docs/model-card.md)."""
        lines = [f"schema = {CARD_SCHEMA_VERSION}", f"name = {_tv(self.name)}",
                 f"description = {_tv(self.description)}", "", "[input]", f"name = {_tv(self.input_name)}",
                 f"size = [{self.size[0]}, {self.size[1]}]",
                 f"layout = {_tv(self.layout)}", f"value_range = [{self.value_range[0]}, {self.value_range[1]}]",
                 "", "[output]", f"name = {_tv(self.output_name)}",
                 f"value_range = [{self.output_range[0]}, {self.output_range[1]}]", ""]
        lines += toml_table("provenance", self.provenance)
        lines += toml_table("int8", self.int8)
        lines += preprocess_tables(self.chain.to_spec())
        return "\n".join(lines)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / "model.toml"
        path.write_text(self.to_toml())
        return path


def read_card(path: Path, onnx_path: Path | None = None) -> ModelCard:
    """Parse and check a model.toml. Raises UserError naming the file and key."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"can't read the model card: {e}", file=path) from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML: {e}", file=path) from None
    schema = data.get("schema")
    if schema != CARD_SCHEMA_VERSION:
        raise UserError(f"unsupported card schema {schema!r}", file=path, key="schema",
                        expected=f"schema = {CARD_SCHEMA_VERSION}")
    inp, out = data.get("input", {}), data.get("output", {})
    size = inp.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size)):
        raise UserError("bad input size", file=path, key="input.size", expected="[height, width], positive ints")
    layout = inp.get("layout", "NCHW")
    if layout not in ("NCHW", "NHWC"):
        raise UserError(f"bad layout {layout!r}", file=path, key="input.layout", expected='"NCHW" or "NHWC"')
    try:
        chain = Chain.from_spec(data.get("preprocess", "plain"), (size[0], size[1]))
    except ChainError as e:
        raise UserError(e.message, file=path, key=e.path) from None
    int8 = data.get("int8", {})
    if not isinstance(int8, dict) or (int8 and not (isinstance(int8.get("file"), str)
                                                   and isinstance(int8.get("from_sha256"), str))):
        raise UserError("bad int8 table", file=path, key="int8",
                        expected='file = "model.int8.onnx" and from_sha256 = "..." (written by installation quantize)')
    return ModelCard(
        name=str(data.get("name", path.parent.name)), size=(size[0], size[1]), chain=chain,
        input_name=str(inp.get("name", "input")), output_name=str(out.get("name", "output")), layout=layout,
        value_range=_range(inp.get("value_range", [-1.0, 1.0]), path, "input.value_range"),
        output_range=_range(out.get("value_range", [-1.0, 1.0]), path, "output.value_range"),
        description=str(data.get("description", "")), provenance=dict(data.get("provenance", {})), int8=dict(int8),
    )


def _range(v: Any, path: Path, key: str) -> tuple[float, float]:
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v) and v[0] < v[1]):
        raise UserError("bad value range", file=path, key=key, expected="[low, high] with low < high")
    return float(v[0]), float(v[1])


def infer_card(onnx_path: Path, default_size: int = 256) -> ModelCard:
    """A card from the graph alone, for plain image-to-image ONNX files from other trainers."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as e:
        raise UserError(f"not a readable ONNX model: {e}", file=onnx_path) from None
    init_names = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init_names]
    if len(inputs) != 1:
        raise UserError(f"the graph has {len(inputs)} inputs", file=onnx_path,
                        expected="one image input (N,3,H,W) or (N,H,W,3)")
    i = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
    elem = i.type.tensor_type.elem_type
    if len(dims) != 4 or elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
        raise UserError(f"input {i.name!r} has shape {dims} and element type {elem}", file=onnx_path,
                        expected="a float image input of rank 4, (N,3,H,W) or (N,H,W,3)")
    if dims[1] == 3:
        layout, h, w = "NCHW", dims[2], dims[3]
    elif dims[3] == 3:
        layout, h, w = "NHWC", dims[1], dims[2]
    else:
        raise UserError(f"input {i.name!r} has shape {dims}: no axis of 3 colour channels", file=onnx_path,
                        expected="(N,3,H,W) or (N,H,W,3)")
    h = h or default_size
    w = w or default_size
    outputs = list(model.graph.output)
    return ModelCard(name=onnx_path.stem, size=(h, w), chain=Chain.from_spec("plain", (h, w)),
                     input_name=i.name, output_name=outputs[0].name if outputs else "output", layout=layout,
                     inferred=True, description="card inferred from the ONNX graph")


def looks_like_path(name: str) -> bool:
    """A model named by path ("models/blue", "./x.onnx") rather than by a bare name ("blue")."""
    return "/" in name or name.endswith(".onnx") or name in (".", "..")


def is_model_name(name: str) -> bool:
    """What a controller may select (OSC, the web, MIDI, presets, schedules): a bare name, at most 64 ASCII
    letters, digits and `._-`, starting with a letter or digit; never a path (paths come only from the show
    file and the command line)."""
    return (0 < len(name) <= 64 and name.isascii() and name[0].isalnum() and not looks_like_path(name)
            and all(c.isalnum() or c in "._-" for c in name))


def find_model(name: str, base: Path, dirs: Sequence[Path]) -> Path:
    """One rule for every model a show names (its file, the command line): a path is relative to `base`
    (the show file's folder); a bare name is looked up as find_named_model does. Raises UserError."""
    if looks_like_path(name):
        return Path(name) if Path(name).is_absolute() else (base / name).resolve()
    return find_named_model(name, dirs, also=f"; or a path relative to {base}")


def find_named_model(name: str, dirs: Sequence[Path], also: str = "") -> Path:
    """A bare name: a model folder NAME/ or a NAME.onnx in the first of `dirs` that has one. Raises UserError
    saying where it looked (for the local log: it names the machine's folders)."""
    for d in dirs:
        for cand in (d / name, d / f"{name}.onnx"):
            if (cand / "model.onnx").is_file() or cand.is_file():
                return cand
    raise UserError(f"no model named {name!r}", expected=f"a folder {name}/ with model.onnx, or {name}.onnx, in "
                    + " or ".join(str(d) for d in dirs) + also)


def resolve_model(path: str | Path) -> tuple[Path, ModelCard]:
    """(onnx file, card) for a model folder or a bare .onnx file. Raises UserError."""
    p = Path(path)
    if p.is_dir():
        onnx_path = p / "model.onnx"
        card_path = p / "model.toml"
    else:
        onnx_path, card_path = p, p.with_name("model.toml") if p.name == "model.onnx" else p.with_suffix(".toml")
    if not onnx_path.is_file():
        raise UserError("model file not found", file=onnx_path, expected="a model folder with model.onnx")
    if card_path.is_file():
        return onnx_path, read_card(card_path)
    return onnx_path, infer_card(onnx_path)


PRECISIONS = ("auto", "fp32", "int8")


def file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pick_precision(onnx_path: Path, card: ModelCard, precision: str, on_cpu: bool) -> tuple[Path, Verdict | None]:
    """The graph to open, and the verdict on the int8 twin where one was judged: the folder's twin where
    `precision` asks for it ("int8"), or by "auto" where ONNX Runtime runs on the CPU (a GPU keeps the float
    graph: TensorRT and CUDA make their own fp16). A twin made from another model.onnx than the one beside it
    (re-exported since) is stale: "auto" falls back to model.onnx with a warning, "int8" is refused. A twin
    is judged on this CPU (twin_verdict): beyond the bar "auto" plays model.onnx, "int8" plays the twin as the
    show pins it, each with one warning. Raises UserError."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}", key="model.precision", expected=" or ".join(PRECISIONS))
    if precision == "fp32" or (precision == "auto" and not on_cpu):
        return onnx_path, None
    int8 = card.int8
    fix = f"installation quantize {onnx_path.parent}"
    if not int8:
        if precision == "int8":
            raise UserError("the model has no int8 version", file=onnx_path.parent, key="model.precision",
                            expected=f'"auto" or "fp32", or make one: {fix}')
        return onnx_path, None
    twin = onnx_path.parent / str(int8["file"])
    why = ("is missing" if not twin.is_file() else
           "was made from another model.onnx (re-exported since)" if file_sha256(onnx_path) != int8["from_sha256"]
           else "")
    if why:
        if precision == "int8":
            raise UserError(f"the int8 version {twin.name} {why}", file=onnx_path.parent, key="model.precision",
                            expected=f'"auto" or "fp32", or make it again: {fix}')
        log.warning("model %s: %s %s; running model.onnx (make it again: %s)", card.name, twin.name, why, fix)
        return onnx_path, None
    try:
        verdict = twin_verdict(onnx_path, card, twin, pinned=precision == "int8")
    except Exception as e:  # a damaged twin (not a graph, other shapes) must not keep the show from model.onnx
        first = (str(e).strip().splitlines() or [""])[0]
        said = e.message if isinstance(e, UserError) else f"{type(e).__name__}: {first}"
        if precision == "int8":
            raise UserError(f"the int8 version {twin.name} can't be run here: {said}", file=twin,
                            key="model.precision", expected=f'"auto" or "fp32", or make it again: {fix}') from None
        log.warning("model %s: %s can't be run here (%s); running model.onnx (make it again: %s)", card.name,
                    twin.name, said, fix)
        return onnx_path, None
    if verdict.ok or precision == "int8":
        return twin, verdict
    return onnx_path, verdict


_TOLD: set[tuple[str, str]] = set()  # (twin hash, verdict) already said in this process: a reload says nothing


def twin_verdict(onnx_path: Path, card: ModelCard, twin: Path, pinned: bool = False) -> Verdict:
    """The int8 twin compared with model.onnx on this CPU (inference/twin.py): the cached verdict for this
    twin, CPU and ONNX Runtime, or judged now on a few pictures and cached. Said once in the log; `pinned`:
    the show asks for int8 by name, and a twin beyond the bar plays all the same."""
    import onnxruntime as ort

    sha = file_sha256(twin)
    v = cached_verdict(sha, ort.__version__)
    if v is None:
        fp32 = Model(onnx_path, card, OnnxBackend(onnx_path, card, "cpu"))
        int8 = Model(onnx_path, card, OnnxBackend(twin, card, "cpu"), graph=twin)
        v = judge(sha, ort.__version__, fp32.infer, int8.infer, card.chain, card.size)
    if (sha, v.judged) not in _TOLD:
        _TOLD.add((sha, v.judged))
        if v.ok:
            log.info("model %s: int8 twin %s: %s", card.name, twin.name, v.said())
        else:
            log.warning("model %s: int8 twin %s beyond the bar on this CPU: %s; %s", card.name, twin.name,
                        v.said(), 'playing it all the same: the show sets precision = "int8"' if pinned else
                        "playing model.onnx (fp32) instead")
    return v


def precision_line(model: Model) -> str:
    """What `check` says of the graph a model runs, with the verdict on its int8 twin where one was judged."""
    q, v = model.card.int8, model.verdict
    made = (f"{q.get('ms_int8', '?')} against {q.get('ms_fp32', '?')} ms an inference when it was made"
            + (f" on {q['timed_on']}" if q.get("timed_on") else ""))
    if model.precision == "int8":
        if v is None:
            return (f"int8 ({model.graph.name}: {q.get('mean_diff', '?')} grey levels from model.onnx on average; "
                    f"{made})")
        beyond = "" if v.ok else "beyond the bar, played as the show sets precision = \"int8\": "
        return f"int8 ({model.graph.name}: {beyond}{v.said()}; {made})"
    if not isinstance(model.backend, OnnxBackend) or model.backend.providers[0] != "CPUExecutionProvider":
        return f"{model.precision} ({model.graph.name}, on {model.backend.providers[0]})"
    if v is not None:  # judged and refused
        return f"{model.precision} ({model.graph.name}; the int8 twin {q['file']} is refused here: {v.said()})"
    hint = "" if q else f"; no int8 version (installation quantize {model.path.parent} makes one)"
    return f"{model.precision} ({model.graph.name}{hint})"


# ---- backends ----------------------------------------------------------------------------------

class Backend(Protocol):
    providers: list[str]

    def run(self, x: np.ndarray) -> np.ndarray: ...


def choose_providers(wanted: list[str] | str | None) -> list[str]:
    """Providers in preference order: what the show asked for (or 'auto'), filtered by what is installed."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if wanted in (None, "auto", ["auto"]):
        names = list(PROVIDER_ORDER)
    else:
        names = [PROVIDER_ALIASES.get(w.lower(), w) for w in ([wanted] if isinstance(wanted, str) else wanted)]
    chosen = [n for n in names if n in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class OnnxBackend:
    """An ONNX Runtime session; providers TensorRT -> CUDA -> CPU by availability."""

    def __init__(self, onnx_path: Path, card: ModelCard, providers: list[str] | str | None = None,
                 cache_dir: Path | None = None, fp16: bool = True, threads: int = 0) -> None:
        import onnxruntime as ort

        self.card = card
        names = choose_providers(providers)
        opts: list[tuple[str, dict[str, Any]]] = []
        for n in names:
            if n == "TensorrtExecutionProvider":
                cache = Path(cache_dir or Path(onnx_path).parent / ".trt_cache")
                cache.mkdir(parents=True, exist_ok=True)
                opts.append((n, {"trt_fp16_enable": fp16, "trt_engine_cache_enable": True,
                                 "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": True,
                                 "trt_timing_cache_path": str(cache)}))
            elif n == "CUDAExecutionProvider":
                # EXHAUSTIVE picks the fastest cuDNN kernels once at load; the shapes never change here
                opts.append((n, {"cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True}))
            else:
                opts.append((n, {}))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        # Idle pool threads must sleep, not spin: on a small CPU the spinning stole the cores that
        # the GL rasterizer and the preprocessing thread needed (see docs/performance.md).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # fatal only: ORT would print its own error line on every failing run, while the show raises it
        # and logs it once (Stats.fault)
        so.log_severity_level = 4
        try:
            self.session = ort.InferenceSession(str(onnx_path), sess_options=so, providers=opts)
        except Exception as e:
            raise UserError(f"ONNX Runtime can't load the model: {str(e).strip().splitlines()[0]}",
                            file=onnx_path) from None
        self.providers = self.session.get_providers()
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        # On a GPU provider the output stays on the device between runs (IO binding), so a run moves
        # only the input up and the picture down.
        self.on_gpu = self.providers[0] in PROVIDER_ORDER[:2]
        self._binding: Any = self.session.io_binding() if self.on_gpu else None

    def graph_input(self, x: np.ndarray) -> np.ndarray:
        """An NCHW float tensor (preprocess.to_tensor) as the graph takes it: its layout and dtype."""
        if self.card.layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        return x.astype(self.input_dtype, copy=False)

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._binding is not None and self.card.layout == "NCHW":
            b = self._binding
            b.bind_cpu_input(self.input_name, x.astype(self.input_dtype, copy=False))
            b.bind_output(self.output_name, "cuda")
            self.session.run_with_iobinding(b)
            return b.copy_outputs_to_cpu()[0]
        y = self.session.run([self.output_name], {self.input_name: self.graph_input(x)})[0]
        if self.card.layout == "NHWC":
            y = y.transpose(0, 3, 1, 2)
        return y


class Model:
    """A loaded model: its card, its backend, and picture-in, picture-out inference.

    `parallel` is how many frames may be inferred at once (show.py's inference workers): ONNX Runtime
    on the CPU takes concurrent runs, each on its own share of the cores; a GPU backend takes one.
    """

    def __init__(self, onnx_path: Path, card: ModelCard, backend: Backend, parallel: int = 1,
                 graph: Path | None = None, verdict: Verdict | None = None) -> None:
        self.path = onnx_path  # the model as it is named (its model.onnx)
        self.graph = graph or onnx_path  # the file the backend opened: model.onnx or its int8 twin
        self.verdict = verdict  # the int8 twin judged on this CPU (pick_precision), None where it was not
        self.card = card
        self.backend = backend
        self.parallel = parallel
        self.trial_ms: float | None = None  # its trial inference at load, on every core (load_for_rate)
        self._buffers = threading.local()  # each worker thread fills its own input tensor

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def precision(self) -> str:
        """"int8" for the folder's int8 twin, else what the export wrote ("fp32", "fp16")."""
        if self.graph != self.path:
            return "int8"
        return str(self.card.provenance.get("precision", "fp32"))

    @property
    def precision_said(self) -> str:
        """The precision for the HUD's model line, with a twin refused on this CPU (or pinned beyond the bar)."""
        v = self.verdict
        if v is None or v.ok:
            return self.precision
        if self.precision == "int8":
            return f"int8 (beyond the bar here: {v.mean:.1f} levels)"
        return f"{self.precision} (int8 refused here: {v.mean:.1f} levels)"

    def time_inference(self, runs: int = 5) -> float:
        """Milliseconds one inference takes here (median of `runs`, after two warm-up runs)."""
        h, w = self.card.size
        picture = np.zeros((h, w, 3), np.uint8)
        times = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            self.infer(picture)
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000.0)
        return float(np.median(times))

    def infer(self, img: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 at the card's size -> the model's picture, HxWx3 uint8."""
        x = getattr(self._buffers, "x", None)
        if x is None:
            h, w = self.card.size
            x = self._buffers.x = np.empty((1, 3, h, w), np.float32)
        y = self.backend.run(to_tensor(img, self.card.value_range, out=x))
        return from_tensor(y, self.card.output_range)


# One worker on every core answers soonest where one inference fits in this share of the source's frame
# interval: on 2 cores the default show at 30 fps had p50 24-27 ms capture -> present that way.
FITS_IN_INTERVAL = 0.5
# A throughput-bound show below that gets one worker on every core too. Keeping a core for the draw,
# segmenter and decoder (one worker on cores - 1) looked better on a machine loaded by other programs;
# on a quiet one, as a show's machine is, every core gave the default show 59-62 fps unpaced against
# 52-54, p50 21 ms against 23-24, and paced at 60 fps p50 13-16 ms against 19-20 (person: 27-31 against
# 32-33, fewer drops; docs/performance.md, "third pass").
# A second worker (a second frame in flight) only where the model is most of a frame's work: it then uses
# the core the rest of the frame (draw, segmentation, decoding) leaves idle. Below this, on 2 cores, the
# rest of the frame already fills the second core, and a second worker only fought it: the person show
# (8-12 ms an inference) ran 47 fps with two workers against 48-51 with one, at 47 ms p50 latency against
# 31; the default show 64 fps against 67, at 31 ms p50 against 19 (docs/performance.md).
SECOND_WORKER_FROM_MS = 40.0


@dataclass(frozen=True)
class WorkerPlan:
    """How a CPU model is run: frames in flight, ONNX Runtime threads per session (0: every core), and why
    (for `check` and the log)."""

    workers: int
    threads: int
    why: str


def plan_cpu(setting: int | str = "auto", cores: int | None = None, infer_ms: float | None = None,
             source_fps: float | None = None) -> WorkerPlan:
    """`[model] workers` on the CPU. "auto":

    - one worker on every core where a core is all there is, or where one inference (`infer_ms`, timed
      on every core) fits in half the source's frame interval: one frame at a time answers soonest;
    - otherwise the show needs throughput: still one worker on every core (ONNX Runtime's idle threads
      sleep, so the draw, the segmenter and the decoder get the cores between inferences), and a second
      worker only for a model of SECOND_WORKER_FROM_MS or more, whose inference is most of the frame.
    A number is kept as given, each worker with its share of the cores."""
    cores = cores or cpu_cores()
    if setting != "auto":
        n = max(1, int(setting))
        return WorkerPlan(n, 0 if n <= 1 else max(1, cores // n), "set in the show")
    if cores < 2:
        return WorkerPlan(1, 0, "one core")
    if infer_ms is None:  # not timed (asked before a model is loaded): the most "auto" may use
        return WorkerPlan(2, max(1, cores // 2), "not timed: at most two frames in flight")
    if infer_ms is not None and source_fps and infer_ms * source_fps / 1000.0 <= FITS_IN_INTERVAL:
        return WorkerPlan(1, 0, f"{infer_ms:.1f} ms an inference on every core fits in half the source's "
                                f"frame interval ({source_fps:g} fps): one frame at a time, every core")
    rate = f"the source at {source_fps:g} fps" if source_fps else "an unpaced source"
    timed = f"{infer_ms:.1f} ms an inference on every core, " if infer_ms is not None else ""
    if infer_ms is not None and infer_ms >= SECOND_WORKER_FROM_MS:
        return WorkerPlan(2, max(1, cores // 2), f"{timed}{rate}: the model is most of a frame, two frames "
                                                 "in flight, each on half the cores")
    return WorkerPlan(1, 0, f"{timed}{rate}: one worker on every core, the draw, segmenter and decoder "
                            "between its inferences (a second worker pays from "
                            f"{SECOND_WORKER_FROM_MS:g} ms an inference)")


def plan_workers(setting: int | str = "auto", cores: int | None = None, infer_ms: float | None = None,
                 source_fps: float | None = None) -> int:
    """Inference workers (frames in flight) for a show's `[model] workers` (plan_cpu)."""
    return plan_cpu(setting, cores, infer_ms, source_fps).workers


def default_threads(workers: int = 1) -> int:
    """ONNX Runtime's intra-op threads per session: INSTALLATION_ORT_THREADS; else, with one worker, ORT's
    own choice (0: every core), with several, the cores shared out between them."""
    env = os.environ.get("INSTALLATION_ORT_THREADS")
    if env:
        return int(env)
    return 0 if workers <= 1 else max(1, cpu_cores() // workers)


BACKENDS = ("onnx", "torch")


def load_model(path: str | Path, providers: list[str] | str | None = None,
               cache_dir: Path | None = None, backend: str | None = None, threads: int | None = None,
               workers: int = 1, precision: str = "auto") -> Model:
    """Resolve, check and open a model. Raises UserError for anything the user can fix.

    backend: "onnx" (ONNX Runtime, the default) or "torch" (installation.gpu.TorchBackend: the same
    graph run by PyTorch, fp16 + channels_last + CUDA graphs on a GPU); INSTALLATION_BACKEND sets it too.
    workers: the show's inference workers (plan_workers); on the CPU each session gets its share of cores.
    precision: "auto" (the folder's int8 twin where ONNX Runtime runs on the CPU), "fp32" or "int8".
    """
    onnx_path, card = resolve_model(path)
    backend = backend or os.environ.get("INSTALLATION_BACKEND") or "onnx"
    if backend not in BACKENDS:
        raise UserError(f"unknown inference backend {backend!r}", expected=" or ".join(BACKENDS))
    if backend == "torch":
        if precision == "int8":
            raise UserError("int8 models run on ONNX Runtime", key="model.precision",
                            expected='"auto" or "fp32" with backend "torch"')
        from installation.inference.torch_backend import TorchBackend

        tb = TorchBackend.from_onnx(onnx_path, card)
        log.info("model %s: %dx%d via %s", card.name, card.size[1], card.size[0], ",".join(tb.providers))
        return Model(onnx_path, card, tb)
    on_cpu = choose_providers(providers)[0] == "CPUExecutionProvider"
    workers = workers if on_cpu else 1
    graph, verdict = pick_precision(onnx_path, card, precision, on_cpu)
    ob = OnnxBackend(graph, card, providers, cache_dir=cache_dir,
                     threads=default_threads(workers) if threads is None else threads)
    log.info("model %s: %dx%d via %s%s%s", card.name, card.size[1], card.size[0], ",".join(ob.providers),
             ", int8" if graph != onnx_path else "", f", {workers} workers" if workers > 1 else "")
    return Model(onnx_path, card, ob, parallel=workers if ob.providers[0] == "CPUExecutionProvider" else 1,
                 graph=graph, verdict=verdict)


def show_backend(setting: str, file: Path | None) -> str | None:
    """A show's `[model] backend` as load_model's argument (None: "auto", the environment or onnx).
    "torch" is the GPU frame path: without CUDA it is a mistake in the show, named here, not a slow
    surprise on the opening night."""
    if setting == "auto":
        return None
    if setting == "torch":
        from installation.inference.torch_backend import cuda_status

        ok, why = cuda_status()
        if not ok:
            raise UserError(f"backend torch runs on a CUDA GPU, and here {why}", file=file, key="model.backend",
                            expected='"onnx" or "auto" on a machine without CUDA')
    return setting


def plan_model(model: Model, source_fps: float | None, setting: int | str = "auto") -> tuple[WorkerPlan, float | None]:
    """The WorkerPlan for a model opened on every core (timed here on the CPU), and the time it took."""
    if not isinstance(model.backend, OnnxBackend) or model.backend.providers[0] != "CPUExecutionProvider":
        return WorkerPlan(1, 0, "a GPU takes one frame at a time"), None
    ms = model.time_inference() if setting == "auto" else None
    return plan_cpu(setting, infer_ms=ms, source_fps=source_fps), ms


def load_for_rate(path: str | Path, providers: list[str] | str | None = None, workers: int | str = "auto",
                  source_fps: float | None = None, **kw: Any) -> Model:
    """A model for a source delivering `source_fps` frames a second (None: as fast as it is read), run as
    plan_cpu() says: on the CPU under "auto" it is timed once on every core, then opened again with the
    workers and threads the plan gives where they differ."""
    if workers != "auto":
        return load_model(path, providers, workers=int(workers), **kw)
    model = load_model(path, providers, workers=1, **kw)
    try:
        plan, ms = plan_model(model, source_fps)
    except Exception as e:  # the live loop meets the same fault, and counts, shows and retries it
        log.warning("model %s: a trial inference failed (%s: %s); one frame at a time", model.name,
                    type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        return model
    if ms is not None:
        log.info("model %s: %s", model.name, plan.why)
    if plan.workers != 1 or plan.threads != 0:
        threads = kw.pop("threads", None)
        if threads is None and not os.environ.get("INSTALLATION_ORT_THREADS"):
            threads = plan.threads
        model = load_model(path, providers, workers=plan.workers, threads=threads, **kw)
    model.trial_ms = ms
    return model
