"""A model folder's 8-bit twin for the CPU: `model.int8.onnx` beside `model.onnx`, recorded in the card.

Static quantization: activations are calibrated on pictures made by the model's own preprocessing chain from
the artist's clips or photographs (the same chain the show and the trainer run), then the twin and model.onnx
paint held-out pictures and are compared. Above the bar nothing is written. model.onnx stays: GPUs and
`precision = "fp32"` run it.

Weights are 7-bit (per output channel) so the twin paints the same picture on every x86-64 CPU. ONNX Runtime
multiplies uint8 activations by int8 weights with VPMADDUBSW where the CPU has AVX2 but no VNNI; it adds two
products into a saturating int16, and 255 x 127 x 2 overflows it. On a 2-core EPYC without VNNI, full-range
weights put the integer kernels 2.3 (a tiny random net) and 4.9 (the leaves look) grey levels from the twin's
own arithmetic; with 7-bit weights 255 x 64 x 2 fits, and the kernels agree with it within 0.1. VNNI CPUs sum
in int32 and run either twin at the same speed. Activations are calibrated on the 99.999th percentile, not the
extremes: a few outliers no longer stretch the 8-bit range (the leaves look 2.8 -> 1.0 levels from fp32).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import shlex
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from installation.core.errors import UserError
from installation.core.files import atomic_path, atomic_write
from installation.inference.models import (
    Model,
    ModelCard,
    OnnxBackend,
    cpu_cores,
    cpu_name,
    file_sha256,
    read_card,
)
from installation.inference.twin import MAX_DIFF, compare, judge  # one measure and bar: the show judges twins too
from installation.training.dataset import find_sources
from installation.vision.preprocess import Chain, to_tensor

log = logging.getLogger("installation.quantize")

INT8_FILE = "model.int8.onnx"
WEIGHTS = "int8 holding 7 bits, per output channel"  # as the card records them
ACTIVATIONS = "uint8, calibrated on the 99.999th percentile"


@dataclass
class Quantized:
    folder: Path
    mean_diff: float  # grey levels, over the held-out pictures
    worst_diff: float  # the held-out picture furthest from model.onnx's, its mean
    ms_fp32: float
    ms_int8: float
    calibrated_on: int
    checked_on: int


def model_pictures(card: ModelCard, inputs: Sequence[str | Path], count: int) -> list[np.ndarray]:
    """Up to `count` pictures as the model sees them (HxWx3 uint8 at the card's size), spread evenly over
    videos and pictures: each through the card's chain (its steps that need no mask or earlier frame)."""
    sources = find_sources(inputs)
    totals = [s.count(1) or 0 for s in sources]
    per_source = max(1, count // max(1, len(sources)))
    chain = Chain.from_spec(card.chain.for_training().to_spec(), card.size)
    out: list[np.ndarray] = []
    for src, total in zip(sources, totals, strict=True):
        every = max(1, total // per_source) if total else 1
        for taken, (_, rgb) in enumerate(src.frames(every), 1):
            out.append(chain.apply(rgb)[0])
            if taken >= per_source:
                break
    if len(out) < 4:
        raise UserError(f"{len(out)} pictures to calibrate on", file=Path(str(inputs[0])),
                        expected="videos or pictures giving at least 4 (the show's own footage is best)")
    return out


class _Reader:
    """onnxruntime.quantization's calibration reader: the pictures as the float graph takes them."""

    def __init__(self, backend: OnnxBackend, pictures: list[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = (
            np.ascontiguousarray(backend.graph_input(to_tensor(p, backend.card.value_range))) for p in pictures)
        self.name = backend.input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.name: x}

    def rewind(self) -> None:  # the calibrator reads once; kept for its interface
        pass


def quantize_model(folder: str | Path, inputs: Sequence[str | Path], count: int = 96,
                   max_diff: float = MAX_DIFF) -> Quantized:
    """Write FOLDER/model.int8.onnx and its [int8] table in FOLDER/model.toml, or raise UserError and
    leave the folder as it was."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    said = Path(folder)
    folder = said.resolve()  # (the quantizer runs in a temporary working directory)
    onnx_path, card_path = folder / "model.onnx", folder / "model.toml"
    if not (onnx_path.is_file() and card_path.is_file()):
        raise UserError("not a model folder", file=said, expected="a folder with model.onnx and model.toml "
                        "(installation export writes one)")
    card = read_card(card_path)
    if card.provenance.get("precision", "fp32") != "fp32":
        raise UserError(f"model.onnx is {card.provenance['precision']}", file=card_path, key="provenance.precision",
                        expected="an fp32 export to quantize (installation export without --fp16)")
    pictures = model_pictures(card, inputs, count)
    calibrate, check = pictures[::2], pictures[1::2]
    fp32 = Model(onnx_path, card, OnnxBackend(onnx_path, card, "cpu"))
    calibration = [_said(p) for p in inputs]
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp, contextlib.chdir(tmp):
        # (in the temporary folder: ONNX Runtime's shape inference leaves files in the working directory)
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / INT8_FILE
        try:  # shapes and ORT's own fusions first, as the quantizer asks; a graph it can't take goes as it is
            quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        except Exception as e:
            log.info("quantize: no pre-processing of the graph (%s: %s)", type(e).__name__, e)
            pre = onnx_path
        try:
            quantize_static(str(pre), str(out), _Reader(fp32.backend, calibrate), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=True,  # 7-bit weights: see the module's docstring
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile)
        except Exception as e:
            raise UserError(f"ONNX Runtime can't quantize this graph: {type(e).__name__}: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}", file=onnx_path) from None
        int8 = Model(onnx_path, card, OnnxBackend(out, card, "cpu"), graph=out)
        mean, worst = compare(fp32.infer, int8.infer, check)
        # the show judges the twin again at load, on its own photographs: a twin it would refuse is not written
        # (and the verdict kept here spares this machine's first start the judgement)
        at_load = judge(file_sha256(out), _ort_version(), fp32.infer, int8.infer, card.chain, card.size)
        for figure, farthest, on in ((mean, worst, "held-out pictures"), (at_load.mean, at_load.worst,
                                                                             "photographs the show judges it on")):
            if figure > max_diff:
                raise UserError(f"the int8 model's pictures are {figure:.2f} grey levels from model.onnx's on "
                                f"average over the {on} (worst picture {farthest:.2f}); the bar is {max_diff:g}, "
                                "so nothing was written",
                                file=folder, expected="more varied calibration pictures (the show's own footage), "
                                                      "a higher --max-diff, or the fp32 model as it is")
        ms_fp32, ms_int8 = fp32.time_inference(runs=15), int8.time_inference(runs=15)
        card.int8 = {
            "file": INT8_FILE, "from_sha256": file_sha256(onnx_path),
            "weights": WEIGHTS, "activations": ACTIVATIONS,
            "mean_diff": round(mean, 2), "worst_diff": round(worst, 2),
            "photographs_diff": round(at_load.mean, 2),  # on the pictures a show judges the twin with at load
            "calibrated_on": len(calibrate), "checked_on": len(check),
            "calibration": calibration,
            "ms_fp32": round(ms_fp32, 2), "ms_int8": round(ms_int8, 2),
            "timed_on": f"{cpu_name()}, {cpu_cores()} cores, ONNX Runtime {_ort_version()} on the CPU, every core",
            "made": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
            "command": " ".join(["installation", *map(shlex.quote, sys.argv[1:])]) if sys.argv[1:] else "",
        }
        with atomic_path(folder / INT8_FILE) as dst:
            dst.write_bytes(out.read_bytes())
    atomic_write(card_path, card.to_toml())
    return Quantized(said, mean, worst, ms_fp32, ms_int8, len(calibrate), len(check))


def _ort_version() -> str:
    import onnxruntime as ort

    return str(ort.__version__)


def _said(path: str | Path) -> str:
    """A calibration input as the card records it: relative to where the command ran, where it lies below."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)
