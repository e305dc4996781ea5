"""Shared fixtures: tiny real ONNX models and clips made in a temporary folder, and a GL context."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("INSTALLATION_STATE_DIR", "")  # tests pass --state or a tmp dir explicitly

REPO = Path(__file__).resolve().parent.parent


def make_tiny_onnx(path: Path, size: int = 64, dynamic_batch: bool = False,
                   names: tuple[str, str] = ("input", "output"), opset: int = 17, seed: int = 0) -> Path:
    """A real image-to-image ONNX graph (conv -> relu -> conv -> tanh), random weights, NCHW in [-1, 1]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array((rng.standard_normal((3, 8, 3, 3)) * 0.4).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(np.zeros(3, np.float32), "b2")
    nodes = [
        helper.make_node("Conv", [names[0], "w1", "b1"], ["h1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("Conv", ["h2", "w2", "b2"], ["h3"], pads=[1, 1, 1, 1]),
        helper.make_node("Tanh", ["h3"], [names[1]]),
    ]
    batch = "N" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info(names[1], TensorProto.FLOAT, [batch, 3, size, size])], [w1, b1, w2, b2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_model_folder(folder: Path, size: int = 64, chain: str = "plain", name: str = "tiny") -> Path:
    """A model folder (model.onnx + model.toml) as the exporter writes them."""
    from installation.inference.models import ModelCard
    from installation.vision.preprocess import Chain

    make_tiny_onnx(folder / "model.onnx", size)
    ModelCard(name=name, size=(size, size), chain=Chain.from_spec(chain, size),
              provenance={"made_by": "tests/conftest.py"}).save(folder)
    return folder


def make_clip(path: Path, frames: int = 30, size: tuple[int, int] = (320, 180), fps: float = 30.0) -> Path:
    """A short mp4 of a bright disc moving across a gradient."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    xx = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    for i in range(frames):
        img = np.stack([xx, xx[::-1, ::-1] * 0.5, np.full_like(xx, 80)], axis=2).astype(np.uint8)
        cv2.circle(img, (int(w * (0.1 + 0.8 * i / max(frames - 1, 1))), h // 2), h // 5, (250, 250, 250), -1)
        writer.write(img)
    writer.release()
    return path


def frames_of(path: Path) -> list[np.ndarray]:
    """Every picture of a video file, decoded (BGR, as OpenCV reads them)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    return make_model_folder(tmp_path / "models" / "tiny")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4")


@pytest.fixture(scope="session")
def gl():
    """A real OpenGL context (Mesa llvmpipe through EGL when there is no GPU)."""
    import moderngl

    ctx = moderngl.create_standalone_context(backend="egl")
    yield ctx
    ctx.release()


SYNTHETIC = 'kind = "synthetic"\nwidth = 160\nheight = 90'


def small_show(tmp_path: Path, *, name: str = "t", source: str = SYNTHETIC, model: Path | None = None,
               osc: str = "enabled = false", tail: str = "", file: str = "show.toml") -> Path:
    """A show file that plays anywhere and fast: 160x90 offscreen, a 64² composite; `tail` adds tables."""
    model_line = f'path = "{model}"' if model else ""
    path = tmp_path / file
    path.write_text(f'name = "{name}"\n[source]\n{source}\n[model]\n{model_line}\n'
                    f"[render]\nwidth = 160\nheight = 90\ncontent_size = 64\n[osc]\n{osc}\n{tail}\n")
    return path


def write_show(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def torch_one_thread():
    """Two OpenMP threads on a busy 2-core machine spin against each other; one is faster there."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@contextmanager
def xvfb(size: str = "800x600") -> Iterator[str]:
    """A virtual X screen for window and key tests; yields its DISPLAY. -displayfd: Xvfb picks a free
    display and writes its number once it accepts clients (no guessed numbers, no sleep)."""
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        display = ":" + proc.stdout.readline().strip()
        assert proc.poll() is None and display != ":", "Xvfb did not start"
        yield display
    finally:
        proc.terminate()
        proc.wait(5)


def xdotool(display: str, *args: str) -> None:
    subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, check=True, timeout=20)


@pytest.fixture
def needs_ndi() -> None:
    """Skips where the NDI runtime inside the wheel can't load (another platform)."""
    try:
        from installation.media.ndi import runtime

        runtime()
    except OSError as e:
        pytest.skip(f"NDI can't run here: {e}")


def cpuinfo_facts() -> tuple[str, set[str]]:
    """(model name, the flags among AVX2/AVX-512/VNNI) as /proc/cpuinfo says them, read here apart from
    installation.core.cpu, so tests can judge the CPU records the runtime writes."""
    text = Path("/proc/cpuinfo").read_text()
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    relevant = {"avx2", "avx512f", "avx512_vnni", "avx_vnni"}
    return (name.group(1).strip() if name else ""), (set(flags.group(1).split()) & relevant if flags else set())


def assert_names_this_cpu(record: dict) -> None:
    """A CPU record (core/cpu.cpu_record, or bench's device) names this machine's CPU and its flags."""
    name, flags = cpuinfo_facts()
    said = record.get("name") or record.get("cpu")
    assert name and name in said, (name, record)
    assert set(record.get("flags", record.get("cpu_flags"))) == flags, (flags, record)
    assert ("no VNNI" in said) == (not flags & {"avx512_vnni", "avx_vnni"}), said
    assert ("no AVX-512" in said) == ("avx512f" not in flags), said
