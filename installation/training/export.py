"""Checkpoint -> model folder (model.onnx + model.toml), checked against PyTorch before it is written.

Takes a checkpoint of `installation train`, a generator state dict of the well-known pytorch pix2pix
code (`latest_net_G.pth`: unet_256, unet_128, resnet_9blocks), or an ONNX file from another trainer
(given a card). The generator is exported in eval mode (dropout off, batch norm on its running
statistics), then PyTorch and ONNX Runtime run the same inputs; a model whose outputs differ by more
than the tolerance is not written.
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import os
import shlex
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from installation.core.errors import UserError
from installation.inference.models import ModelCard, infer_card
from installation.training.checkpoint import (
    CHECKPOINT_FORMAT,
    build_generator,
    check_checkpoint,
    load_weights,
    versions,
)
from installation.training.networks import count_parameters, define_G
from installation.training.pix2pix_convert import arch_kwargs, convert_state_dict, guess_arch, looks_like_pix2pix
from installation.training.quantize import INT8_FILE
from installation.vision.preprocess import Chain, ChainError

log = logging.getLogger("installation.export")

TOLERANCE = {False: 1e-4, True: 2e-2}  # max-abs on the [-1, 1] output: fp32, fp16


@dataclass
class Exported:
    folder: Path
    card: ModelCard
    max_abs: float | None  # None: no parity check ran (an imported ONNX file has no PyTorch original)
    tolerance: float | None


@dataclass
class Source:
    """A generator ready to export, and what the card should say about it."""

    G: nn.Module
    size: int
    chain_spec: Any
    provenance: dict[str, Any]


def load_source(path: Path, arch: str | None = None, size: int | None = None, chain: Any = None) -> Source:
    """Our checkpoint or a pix2pix state dict, as a generator in eval mode. Raises UserError."""
    if not path.is_file():
        raise UserError("no such checkpoint", file=path, expected="runs/NAME/latest.pt or a latest_net_G.pth")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(f"not a readable PyTorch checkpoint: {str(e).splitlines()[0][:200]}", file=path) from None
    if isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        ckpt = check_checkpoint(obj, path)
        if arch is not None:
            raise UserError("--arch is for pix2pix state dicts; this checkpoint names its own architecture",
                            file=path, key="--arch")
        if size is not None and size != ckpt["size"]:
            raise UserError(f"the model was trained at {ckpt['size']}", file=path, key="--size",
                            expected=f"--size {ckpt['size']} or none")
        G = build_generator(ckpt, path)
        hist = ckpt.get("losses") or []
        final = {k: round(float(v), 5) for k, v in hist[-1].items() if k not in ("epoch", "lr", "seconds")} \
            if hist else {}
        cfg = ckpt.get("config", {})
        prov = {"checkpoint": str(path), "dataset": (ckpt.get("dataset") or {}).get("path", ""),
                "dataset_kind": (ckpt.get("dataset") or {}).get("kind", ""),
                **({"segment": ckpt["dataset"]["segment"]} if (ckpt.get("dataset") or {}).get("segment") else {}),
                "train_command": ckpt.get("command", ""), "epochs": ckpt["epoch"],
                "training_seconds": round(float(ckpt.get("seconds", 0.0)), 1), "final_losses": final,
                "training_steps": int(ckpt.get("global_step", 0)), "training_runs": len(ckpt.get("runs", [])),
                "arch": dict(ckpt["arch"]), "batch_size": cfg.get("batch_size", 0), "seed": cfg.get("seed", 0),
                "trained_with": dict(ckpt.get("versions", {}))}
        return Source(G, ckpt["size"], chain if chain is not None else ckpt["chain"], prov)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        if not looks_like_pix2pix(obj):
            raise UserError("a state dict, but not of a pix2pix generator", file=path,
                            expected="keys like model.model.0.weight (unet) or model.1.weight + "
                                     "conv_block (resnet)")
        name = arch or guess_arch(obj, path)
        kwargs, default_size = arch_kwargs(name, obj, path)
        side = size or default_size
        if kwargs["kind"] == "unet" and side % (2 ** kwargs["depth"]):
            raise UserError(f"{name} needs a size divisible by {2 ** kwargs['depth']}", key="--size")
        G = define_G(**kwargs)
        try:
            state = convert_state_dict(obj, kwargs)
        except KeyError as e:
            raise UserError(f"unexpected key {e.args[0]!r} for {name}", file=path,
                            expected=f"the keys of a pix2pix {name} generator") from None
        # Checkpoints from PyTorch < 0.4 have no num_batches_tracked; eval mode never reads it.
        for key, t in G.state_dict().items():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros_like(t)
        load_weights(G, state, path, f"a pix2pix {name} generator")
        prov = {"checkpoint": str(path), "converted_from": f"pytorch pix2pix {name}", "arch": kwargs}
        return Source(G, side, chain if chain is not None else "plain", prov)
    raise UserError("not a checkpoint this exporter knows", file=path,
                    expected=f'a checkpoint of `installation train` (format "{CHECKPOINT_FORMAT}") or a pix2pix '
                             "generator state dict (latest_net_G.pth)")


def to_onnx(G: nn.Module, size: int, path: Path, opset: int = 17, fp16: bool = False,
            input_name: str = "input", output_name: str = "output") -> None:
    """The generator as ONNX, NCHW, batch dimension dynamic, in eval mode."""
    net = copy.deepcopy(G).eval()
    dummy = torch.zeros(1, 3, size, size)
    if fp16:
        net, dummy = net.half(), dummy.half()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in torch 2.9+ but exact for these networks
        # (see DESIGN.md); the warning would only alarm the user.
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (dummy,), str(path), dynamo=False, opset_version=opset,
                          input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                          do_constant_folding=True)


def parity(G: nn.Module, onnx_path: Path, size: int, fp16: bool, batch: int = 2, seed: int = 0) -> float:
    """Max-abs difference between PyTorch (float32, eval mode) and ONNX Runtime on the same inputs:
    random pictures in [-1, 1] and a smooth gradient, two of them in one batch to try the batch axis."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    x[-1] = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1), -ramp[None, :].repeat(size, 0)])
    net = copy.deepcopy(G).float().eval()
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    got = sess.run(None, {inp.name: x.astype(np.float16 if fp16 else np.float32)})[0].astype(np.float32)
    if got.shape != ref.shape:
        raise UserError(f"ONNX Runtime gave shape {got.shape}, PyTorch {ref.shape}", file=onnx_path)
    return float(np.abs(got - ref).max())


def export_model(checkpoint: str | Path, out: str | Path, fp16: bool = False, opset: int = 17,
                 arch: str | None = None, size: int | None = None, chain: Any = None, name: str | None = None,
                 command: str | None = None, tolerance: float | None = None) -> Exported:
    """Write out/model.onnx and out/model.toml from a checkpoint, or raise UserError (nothing written).
    `tolerance` replaces the max-abs limit (default 1e-4, fp16 2e-2)."""
    checkpoint, out = Path(checkpoint), Path(out)
    if checkpoint.suffix.lower() == ".onnx":
        return import_onnx(checkpoint, out, chain, name, command)
    src = load_source(checkpoint, arch, size, chain)
    try:
        card_chain = Chain.from_spec(src.chain_spec, src.size)
    except ChainError as e:
        raise UserError(e.message, key=f"chain: {e.path}") from None
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.onnx.tmp"
    try:
        to_onnx(src.G, src.size, tmp, opset, fp16)
        _check_graph(tmp)
        err = parity(src.G, tmp, src.size, fp16)
        tol = TOLERANCE[fp16] if tolerance is None else tolerance
        verdict = "within" if err <= tol else "OVER"
        print(f"export: ONNX Runtime vs PyTorch max-abs difference {err:.3g} ({verdict} the "
              f"{'fp16' if fp16 else 'fp32'} tolerance {tol:g})")
        if err > tol:
            raise UserError(f"ONNX Runtime's output differs from PyTorch's by {err:.3g} (max abs); model not written",
                            file=checkpoint, expected=f"at most {tol:g}")
        os.replace(tmp, out / "model.onnx")
    finally:
        tmp.unlink(missing_ok=True)
    import onnx
    import onnxruntime

    prov = {**src.provenance, "exported": _now(), "export_command": command or _command(),
            "opset": opset, "precision": "fp16" if fp16 else "fp32", "parity_max_abs": float(f"{err:.3g}"),
            "parameters": count_parameters(src.G),
            "versions": {**versions(), "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}}
    card = ModelCard(name=name or out.resolve().name, size=(src.size, src.size), chain=card_chain,
                     description=_describe(src), provenance=prov)
    _drop_stale_int8(out)
    card.save(out)
    return Exported(out, card, err, tol)


def _describe(src: Source) -> str:
    a = src.provenance.get("arch", {})
    kind = f"{a.get('kind', '?')} width {a.get('width', '?')}"
    if "depth" in a:
        kind += f", {a['depth']} down-blocks"
    origin = src.provenance.get("converted_from") or f"trained {src.provenance.get('epochs', '?')} epochs"
    return f"pix2pix {kind}, {src.size}x{src.size}, {origin}"


def _check_graph(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except Exception as e:
        raise UserError(f"the exported graph fails the ONNX checker: {e}", file=path) from None
    infer_card(path)  # the runtime must be able to read it as an image-to-image model


def import_onnx(path: Path, out: Path, chain: Any, name: str | None, command: str | None) -> Exported:
    """Give a plain image-to-image ONNX model (another trainer's) a folder and a card."""
    import onnxruntime as ort

    card = infer_card(path)  # UserError for a graph whose input isn't an image
    try:
        chain_obj = Chain.from_spec(chain if chain is not None else "plain", card.size)
    except ChainError as e:
        raise UserError(e.message, key=f"chain: {e.path}") from None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise UserError(f"ONNX Runtime can't load it: {str(e).strip().splitlines()[0]}", file=path) from None
    h, w = card.size
    shape = (1, 3, h, w) if card.layout == "NCHW" else (1, h, w, 3)
    dtype = np.float16 if "float16" in sess.get_inputs()[0].type else np.float32
    y = sess.run(None, {card.input_name: np.zeros(shape, dtype)})[0]
    if tuple(y.shape) != shape:
        raise UserError(f"for a {shape} input the graph gives {tuple(y.shape)}", file=path,
                        expected="an image of the input's size and 3 channels")
    out.mkdir(parents=True, exist_ok=True)
    if path.resolve() != (out / "model.onnx").resolve():
        shutil.copyfile(path, out / "model.onnx")
    card.name = name or out.resolve().name
    card.chain = chain_obj
    card.inferred = False
    card.description = f"imported from {path.name}"
    card.provenance = {"source": str(path), "imported": _now(), "export_command": command or _command()}
    _drop_stale_int8(out)
    card.save(out)
    print("export: no parity check (an ONNX file has no PyTorch original to compare with), so the card "
          "records no parity_max_abs")
    return Exported(out, card, None, None)


def _drop_stale_int8(out: Path) -> None:
    """A new model.onnx makes the folder's int8 twin (installation quantize) a picture of another model."""
    twin = out / INT8_FILE
    if twin.is_file():
        twin.unlink()
        print(f"export: removed {twin}, made from the model.onnx before this one "
              f"(installation quantize {out} makes a new one)")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _command() -> str:
    return shlex.join(["installation", *sys.argv[1:]])
