"""The torch backend and the GPU frame path: `TorchBackend` (PyTorch inference: fp16, channels_last,
static buffers, CUDA graph replay) and `GpuChain` (preprocessing as torch ops), leaving the model's
picture on the device as RGBA8 for render/interop.py's CUDA -> GL copy, with no trip through the CPU.

Everything here also runs on the CPU (plain float32 PyTorch, no graphs), which is how the tests check
it against ONNX Runtime and the CPU preprocessing Chain on machines without CUDA. torch is imported
inside functions: `import installation.inference.torch_backend` costs nothing.

The torch backend runs the model folder's own ONNX graph (OnnxModule, in `onnx_torch.py`, interprets
the ops a pix2pix generator exports to), so every model a show can play, ours or another trainer's, runs here
without its training code (export a checkpoint of `installation train` first).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.errors import UserError
from installation.inference.onnx_torch import OnnxModule
from installation.vision.preprocess import Chain, ChainState, crop_box, letterbox_box

log = logging.getLogger("installation.gpu")



def cuda_status() -> tuple[bool, str]:
    """(usable, why not): a CUDA device PyTorch can use."""
    try:
        import torch
    except ImportError:
        return False, "PyTorch is not installed"
    if not torch.cuda.is_available():
        return False, f"PyTorch {torch.__version__} sees no CUDA device"
    return True, torch.cuda.get_device_name(0)


def is_device_tensor(x: Any) -> bool:
    """A CUDA tensor (torch), as opposed to a numpy picture."""
    return bool(getattr(x, "is_cuda", False))


# ---- the torch backend -------------------------------------------------------------------------

class TorchBackend:
    """A generator run by PyTorch. On CUDA: fp16 weights and activations, channels_last memory, one
    static input and output buffer, and the whole forward pass captured once as a CUDA graph and
    replayed per frame (one launch instead of ~60). On the CPU: float32, eager, for tests and parity.

    run(x) takes and returns numpy (the Backend protocol); run_tensor(x) takes and returns device
    tensors and is what the GPU frame path uses.
    """

    def __init__(self, net: Any, size: tuple[int, int], device: str | None = None, fp16: bool | None = None,
                 channels_last: bool | None = None, cuda_graph: bool | None = None) -> None:
        import torch

        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        on_cuda = dev.type == "cuda"
        self.device = dev
        self.fp16 = on_cuda if fp16 is None else fp16
        self.channels_last = on_cuda if channels_last is None else channels_last
        self.use_graph = on_cuda if cuda_graph is None else (cuda_graph and on_cuda)
        self.dtype = torch.float16 if self.fp16 else torch.float32
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        net = net.eval().to(dev, self.dtype)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = net
        h, w = size
        self._in = torch.zeros((1, 3, h, w), dtype=self.dtype, device=dev).contiguous(memory_format=fmt)
        self._graph: Any = None
        if on_cuda:
            torch.backends.cudnn.benchmark = True  # one shape for the whole show: pick the fastest kernels
            self._in.uniform_(-1, 1)  # warm up on real-looking values, never zeros
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), torch.no_grad():
                for _ in range(3):
                    self._out = net(self._in)
            torch.cuda.current_stream().wait_stream(side)
            if self.use_graph:
                self._graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self._graph), torch.no_grad():
                    self._out = net(self._in)
            torch.cuda.synchronize()
        parts = [f"torch-{dev.type}", "fp16" if self.fp16 else "fp32"]
        if self.channels_last:
            parts.append("channels_last")
        if self._graph is not None:
            parts.append("cuda_graph")
        self.providers = [" ".join(parts)]

    @classmethod
    def from_onnx(cls, onnx_path: Path, card: Any, **kw: Any) -> TorchBackend:
        if card.layout != "NCHW":
            raise UserError("the torch backend runs NCHW models", file=onnx_path, expected="backend onnx")
        return cls(OnnxModule.load(onnx_path), card.size, **kw)

    def run_tensor(self, x: Any) -> Any:
        """1x3xHxW on the device (any float dtype) -> the model's output on the device. The result is
        a static buffer, overwritten by the next call: consume or copy it first."""
        import torch

        with torch.no_grad():
            self._in.copy_(x)
            if self._graph is not None:
                self._graph.replay()
                return self._out
            return self.net(self._in)

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch

        y = self.run_tensor(torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True))
        return y.float().cpu().numpy()


# ---- preprocessing as torch ops ----------------------------------------------------------------

def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """cv2 INTER_AREA shrinking: each output pixel averages the input pixels it covers, partial
    pixels weighted by the covered fraction."""
    scale = n_in / n_out
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        a, b = i * scale, (i + 1) * scale
        for j in range(int(np.floor(a)), min(int(np.ceil(b)), n_in)):
            m[i, j] = (min(b, j + 1) - max(a, j)) / scale
    return m


def _half_pixel(n_in: int, n_out: int) -> list[tuple[int, int, float]]:
    """For each output pixel i, cv2's source position on half-pixel centres: (i, floor, fraction)."""
    scale = n_in / n_out
    out = []
    for i in range(n_out):
        x = (i + 0.5) * scale - 0.5
        x0 = int(np.floor(x))
        out.append((i, x0, x - x0))
    return out


def _cubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """cv2 INTER_CUBIC: Keys' cubic with a = -0.75 on half-pixel centres, edge pixels repeated."""
    A = -0.75
    m = np.zeros((n_out, n_in), np.float64)
    for i, x0, t in _half_pixel(n_in, n_out):
        w = [((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A,
             ((A + 2) * t - (A + 3)) * t * t + 1,
             ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1]
        w.append(1.0 - sum(w))
        for k in range(4):
            m[i, min(max(x0 - 1 + k, 0), n_in - 1)] += w[k]
    return m


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    m = np.zeros((n_out, n_in), np.float64)
    for i, x0, t in _half_pixel(n_in, n_out):
        if x0 < 0:
            x0, t = 0, 0.0
        if x0 >= n_in - 1:
            x0, t = n_in - 1, 0.0
        m[i, x0] += 1 - t
        m[i, min(x0 + 1, n_in - 1)] += t
    return m


@lru_cache(maxsize=64)
def resample_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    return {"area": _area_weights, "cubic": _cubic_weights, "linear": _linear_weights}[mode](n_in, n_out)


class GpuChain:
    """The input-stage steps of a preprocessing Chain as torch ops, on CHW float pictures holding
    0..255 values that are rounded after every step, as the uint8 CPU steps are. Resizes are one
    matrix product per axis with cv2's own weights, so results agree with the CPU Chain to within
    cv2's fixed-point rounding (checked in tests/test_gpu.py).

    Steps with no torch version here (median, Canny, thresholds, posterize, the person mask, feedback)
    make `supported()` false: the show then preprocesses on the CPU and uploads the model's input.
    """

    STEPS = ("flip", "crop", "resize", "grey", "blur", "invert", "downscale", "lerp_input", "lerp_output")

    def __init__(self, chain: Chain, device: Any) -> None:
        self.chain = chain
        self.device = device
        self._mats: dict[tuple[int, int, str], Any] = {}

    @classmethod
    def unsupported(cls, chain: Chain) -> list[str]:
        return [s.kind for s in chain.steps if s.kind not in cls.STEPS]

    def _m(self, n_in: int, n_out: int, mode: str) -> Any:
        import torch

        key = (n_in, n_out, mode)
        if key not in self._mats:
            self._mats[key] = torch.from_numpy(resample_matrix(n_in, n_out, mode)).float().to(self.device)
        return self._mats[key]

    def resize(self, x: Any, th: int, tw: int, mode: str) -> Any:
        _, h, w = x.shape
        if mode == "area" and (th > h or tw > w):
            mode = "linear"  # cv2's INTER_AREA enlarging an axis is bilinear
        y = self._m(h, th, mode) @ x @ self._m(w, tw, mode).T
        return y.round_().clamp_(0, 255)

    @staticmethod
    def _round(x: Any) -> Any:
        return x.round().clamp_(0, 255)

    def _step(self, kind: str, x: Any, a: Mapping[str, Any], state: dict[str, Any]) -> Any:
        import torch
        from torch.nn import functional as F

        th, tw = self.chain.size
        if kind == "flip":
            return torch.flip(x, dims=(2,)) if a["flip"] else x
        if kind == "crop":
            _, h, w = x.shape
            if a["crop"] == "centre":
                y0, x0, y1, x1 = crop_box(h, w, th, tw)
                return x[:, y0:y1, x0:x1]
            if a["crop"] == "fit":
                y0, x0, sh, sw = letterbox_box(h, w, th, tw)
                return F.pad(x, (x0, sw - w - x0, y0, sh - h - y0))
            return x
        if kind == "resize":
            _, h, w = x.shape
            if (h, w) == (th, tw):
                return x
            return self.resize(x, th, tw, "area" if h * w > th * tw else "cubic")
        if kind == "grey":  # cv2's fixed-point RGB -> Y, exactly
            y = torch.floor((x[0] * 4899 + x[1] * 9617 + x[2] * 1868 + 8192) / 16384)
            return y.expand(3, -1, -1)
        if kind == "blur":
            s = float(a["blur"])
            if s <= 0:
                return x
            import cv2

            k = round(s * 3 * 2 + 1) | 1  # cv2's kernel size for 8-bit pictures
            g = torch.from_numpy(cv2.getGaussianKernel(k, s).astype(np.float32)[:, 0]).to(x.device)
            p = k // 2
            y = x[None]
            y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), g.view(1, 1, 1, k).expand(3, 1, 1, k), groups=3)
            y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), g.view(1, 1, k, 1).expand(3, 1, k, 1), groups=3)
            return self._round(y[0])
        if kind == "invert":
            return 255 - x
        if kind == "downscale":
            f = float(a["downscale"])
            if f <= 1:
                return x
            _, h, w = x.shape
            small = self.resize(x, max(1, round(h / f)), max(1, round(w / f)), "area")
            return self.resize(small, h, w, "cubic")
        if kind in ("lerp_input", "lerp_output"):
            amount = float(a["input_lerp" if kind == "lerp_input" else "output_lerp"])
            prev = state.get("acc")
            if prev is None or prev.shape != x.shape or amount <= 0:
                state["acc"] = x.float()
                return x
            acc = prev * amount + x * (1.0 - amount)
            state["acc"] = acc
            return torch.floor(acc + 0.5).clamp_(0, 255)
        raise ValueError(f"no torch version of step {kind!r}")

    def _run(self, x: Any, stage: str, values: Mapping[str, Any], state: ChainState) -> Any:
        for i, s in enumerate(self.chain.steps):
            d = s.definition
            if d.stage != stage:
                continue
            args = {k: values.get(p.name, s.args[k]) for k, p in d.args.items()}
            x = self._step(s.kind, x, args, state.of(i))
        return x

    def apply_live(self, img: Any, values: Mapping[str, Any], state: ChainState) -> Any:
        """HxWx3 uint8 (device tensor) -> 3xhxw float32 picture (0..255) at the model's size."""
        return self._run(img.permute(2, 0, 1).float(), "input", values, state)

    def apply_output(self, pic: Any, values: Mapping[str, Any], state: ChainState) -> Any:
        return self._run(pic, "output", values, state)


def picture_to_model(pic: Any, value_range: tuple[float, float]) -> Any:
    """3xHxW float 0..255 -> 1x3xHxW in the model's range (preprocess.to_tensor's arithmetic)."""
    lo, hi = value_range
    return (pic * ((hi - lo) / 255.0) + lo)[None]


def model_to_picture(y: Any, value_range: tuple[float, float]) -> Any:
    """1x3xHxW model output -> 3xHxW float holding uint8 values (preprocess.from_tensor's arithmetic)."""
    lo, hi = value_range
    return ((y[0].float() - lo) * (255.0 / (hi - lo)) + 0.5).clamp_(0, 255).floor_()


def to_rgba8(pic: Any) -> Any:
    """3xHxW float 0..255 -> HxWx4 uint8 contiguous, alpha 255: what the GL interop copies."""
    import torch

    _, h, w = pic.shape
    out = torch.empty((h, w, 4), dtype=torch.uint8, device=pic.device)
    out[:, :, :3] = pic.permute(1, 2, 0)
    out[:, :, 3] = 255
    return out


class GpuPath:
    """One frame on the GPU: upload the camera picture once, preprocess, infer, post-process; the
    result stays on the device as HxWx4 uint8 for the GL interop copy. Built only when the model runs
    on CUDA through the torch backend and every step of its chain has a torch version."""

    def __init__(self, model: Any) -> None:
        import torch

        self.model = model
        self.backend: TorchBackend = model.backend
        self.device = self.backend.device
        self.gchain = GpuChain(model.card.chain, self.device)
        self._pinned: Any = None
        self._stream = torch.cuda.current_stream(self.device)

    @staticmethod
    def why_not(model: Any) -> str:
        """'' when the GPU path can run this model, else the reason."""
        if model is None:
            return "no model"
        backend = model.backend
        if not isinstance(backend, TorchBackend) or backend.device.type != "cuda":
            return "the model is not on the torch CUDA backend"
        bad = GpuChain.unsupported(model.card.chain)
        return f"steps {', '.join(bad)} have no GPU version" if bad else ""

    def upload(self, img: np.ndarray) -> Any:
        """HxWx3 uint8 -> device, through a reused pinned buffer (an async copy at full bus speed)."""
        import torch

        if self._pinned is None or self._pinned.shape != img.shape:
            self._pinned = torch.empty(img.shape, dtype=torch.uint8, pin_memory=True)
        self._pinned.numpy()[...] = img
        return self._pinned.to(self.device, non_blocking=True)

    def _box(self, img: np.ndarray, values: Mapping[str, Any]) -> np.ndarray:
        """Only the part of the picture the model will see, when the chain starts with a flip and a
        centre crop: the crop box is taken mirrored (so flip-then-crop stays exact) and the upload,
        the pinned copy and the first GPU ops shrink with it (1280x720 -> 720x720: 44 % less)."""
        steps = self.model.card.chain.steps
        if len(steps) < 2 or steps[0].kind != "flip" or steps[1].kind != "crop":
            return img
        if values.get("pre/crop", steps[1].args["crop"]) != "centre":
            return img
        h, w = img.shape[:2]
        y0, x0, y1, x1 = crop_box(h, w, *self.model.card.chain.size)
        if values.get("pre/flip", steps[0].args["flip"]):
            x0, x1 = w - x1, w - x0
        return img[y0:y1, x0:x1]  # the GPU chain's own crop then finds nothing left to cut

    def process(self, img: np.ndarray, values: Mapping[str, Any], state: ChainState) -> Any:
        """Camera picture (numpy) -> the model's picture as HxWx4 uint8 on the device, ready to copy."""
        card = self.model.card
        x = self.gchain.apply_live(self.upload(self._box(img, values)), values, state)
        y = self.backend.run_tensor(picture_to_model(x, card.value_range))
        pic = self.gchain.apply_output(model_to_picture(y, card.output_range), values, state)
        out = to_rgba8(pic)
        self._stream.synchronize()  # the main thread copies it next: it must be complete
        return out


def gpu_path_for(model: Any) -> GpuPath | None:
    """The model's GPU frame path, built on first use; None when it can't run there (then the show
    preprocesses on the CPU as usual)."""
    path = getattr(model, "_gpu_path", False)
    if path is False:
        why = GpuPath.why_not(model)
        path = GpuPath(model) if not why else None
        if path is None and isinstance(getattr(model, "backend", None), TorchBackend):
            log.info("GPU frame path off for %s: %s", model.name, why)
        model._gpu_path = path
    return path


# ---- CUDA -> GL ----------------------------------------------------------------------------------


