"""The acceptance scenarios' own parts: tiny models with a known picture, the real `installation`
command run as a subprocess, and real OSC over UDP. Scenarios judge only what comes out: the recorded
video's pixels and length, datagrams, files, exit codes and messages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import frames_of, make_clip  # noqa: F401  (re-exported for scenarios)

INSTALLATION = str(Path(sys.executable).parent / "installation")


def _save_graph(path: Path, nodes: list, inits: list, size: int) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, path.parent.name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _card(folder: Path, size: int, name: str, chain: str) -> Path:
    from installation.inference.models import ModelCard
    from installation.vision.preprocess import Chain

    ModelCard(name=name, size=(size, size), chain=Chain.from_spec(chain, size),
              provenance={"made_by": "tests/scenarios/conftest.py"}).save(folder)
    return folder


def flat_model(folder: Path, rgb: tuple[int, int, int], size: int = 64, chain: str = "plain") -> Path:
    """A model that paints one flat colour (RGB 0..255) whatever its input: input * 0 + colour."""
    from onnx import helper, numpy_helper

    colour = (np.asarray(rgb, np.float32) / 127.5 - 1.0).reshape(1, 3, 1, 1)
    inits = [numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "zero"),
             numpy_helper.from_array(colour, "colour")]
    nodes = [helper.make_node("Mul", ["input", "zero"], ["z"]), helper.make_node("Add", ["z", "colour"], ["output"])]
    _save_graph(folder / "model.onnx", nodes, inits, size)
    return _card(folder, size, folder.name, chain)


def identity_model(folder: Path, size: int = 64, chain: str = "plain") -> Path:
    """A model whose output is its input."""
    from onnx import helper

    _save_graph(folder / "model.onnx", [helper.make_node("Identity", ["input"], ["output"])], [], size)
    return _card(folder, size, folder.name, chain)


def slow_model(folder: Path, target_ms: float = 80.0, size: int = 64, chain: str = "plain") -> Path:
    """A model that costs about `target_ms` a frame on this CPU (wide 3x3 convolutions, timed once here),
    and whose output is its input (a residual that adds zero), so the picture is still checkable."""
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    def build(layers: int) -> Path:
        rng = np.random.default_rng(0)
        inits, nodes, x = [], [], "input"
        ch = 64
        inits.append(numpy_helper.from_array((rng.standard_normal((ch, 3, 3, 3)) * 0.1).astype(np.float32), "w0"))
        nodes.append(helper.make_node("Conv", [x, "w0"], ["h0"], pads=[1, 1, 1, 1]))
        x = "h0"
        for i in range(1, layers + 1):
            inits.append(numpy_helper.from_array((rng.standard_normal((ch, ch, 3, 3)) * 0.05).astype(np.float32),
                                                 f"w{i}"))
            nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"h{i}"], pads=[1, 1, 1, 1]))
            x = f"h{i}"
        inits.append(numpy_helper.from_array(np.zeros((3, ch, 1, 1), np.float32), "wout"))
        nodes.append(helper.make_node("Conv", [x, "wout"], ["delta"]))
        nodes.append(helper.make_node("Add", ["input", "delta"], ["output"]))
        return _save_graph(folder / "model.onnx", nodes, inits, size)

    def cost(path: Path) -> float:
        opts = ort.SessionOptions()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        x = np.zeros((1, 3, size, size), np.float32)
        sess.run(None, {"input": x})
        # the quickest of five: a run slowed by another program would make the model too light (a model
        # meant to be slow that plays at the clip's rate made a recording test fail once)
        runs = []
        for _ in range(5):
            t = time.perf_counter()
            sess.run(None, {"input": x})
            runs.append(time.perf_counter() - t)
        return min(runs) * 1000

    layers = 4
    ms = cost(build(layers))
    layers = max(1, round(layers * target_ms / max(ms, 0.1)))
    build(layers)
    return _card(folder, size, folder.name, chain)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(tmp_path: Path) -> dict[str, str]:
    """The command's environment: its own state folder, no screen (offscreen EGL)."""
    env = dict(os.environ)
    env["INSTALLATION_STATE_DIR"] = str(tmp_path / "state-root")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def run_cli(args: Sequence[str | os.PathLike[str]], tmp_path: Path, timeout: float = 120,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `installation ARGS` to its end; stdout and stderr come back as text."""
    return subprocess.run([INSTALLATION, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(tmp_path), cwd=cwd or tmp_path)


def start_cli(args: Sequence[str | os.PathLike[str]], tmp_path: Path,
              cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start `installation ARGS` in the background (to send it OSC while it plays)."""
    return subprocess.Popen([INSTALLATION, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cli_env(tmp_path), cwd=cwd or tmp_path)


def osc_send(port: int, address: str, *args: object, host: str = "127.0.0.1") -> None:
    from pythonosc.udp_client import SimpleUDPClient

    SimpleUDPClient(host, port).send_message(address, list(args) if args else [])


def mean_rgb(frame_bgr: np.ndarray) -> np.ndarray:
    """A decoded frame's mean colour as RGB floats."""
    return frame_bgr.reshape(-1, 3).mean(axis=0)[::-1]


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    return tmp_path


def wait_presenting(tmp_path: Path, show: Path, proc: subprocess.Popen[str] | None = None,
                    timeout: float = 60.0) -> Path:
    """Wait until a show started with start_cli presents pictures: its heartbeat file (written at the
    first picture, in the state folder cli_env gives it) exists. Returns the heartbeat's path."""
    import tomllib

    from installation.core.state import safe_name

    name = tomllib.loads(Path(show).read_text()).get("name") or Path(show).stem
    beat = tmp_path / "state-root" / safe_name(name) / "heartbeat.json"
    t_end = time.monotonic() + timeout
    while not beat.is_file():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the show ended before presenting: {proc.communicate()[1][-3000:]}")
        if time.monotonic() > t_end:
            raise AssertionError(f"no picture within {timeout} s (no {beat})")
        time.sleep(0.1)
    return beat


def hud_after(show: Path, seconds: float, video: Path | None = None) -> list[str]:
    """Play a show in this process for `seconds` (real source, model and EGL), then the HUD's text."""
    from installation.app import RunOptions, Show, load_show
    from installation.show.options import ControlOptions

    s = Show(load_show(show), RunOptions(headless=True, seconds=seconds, video=video,
                                         control=ControlOptions(osc=False)))
    s.build()
    s.run()
    return s.hud_text()
