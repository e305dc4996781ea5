"""`installation quantize`: a model folder gets model.int8.onnx and an [int8] table in its card, calibrated on
pictures made by the card's own chain; the show runs the twin on the CPU ("auto"), model.onnx on request
("fp32"), and says which; a twin that is missing, stale or too far from model.onnx is refused with the file
and the key, and nothing is written or lost."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest

from installation.core.errors import UserError
from installation.inference.models import file_sha256, load_model
from tests.conftest import make_model_folder, make_tiny_onnx, small_show
from tests.scenarios.conftest import frames_of, hud_after, make_clip, run_cli


def quantized(tmp_path: Path) -> tuple[Path, Path]:
    model = make_model_folder(tmp_path / "models" / "tiny", size=64)
    clip = make_clip(tmp_path / "room.mp4", frames=40)
    r = run_cli(["quantize", model, clip, "--pictures", 16], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "quantize: wrote" in r.stdout and "held-out pictures" in r.stdout, r.stdout
    return model, clip


def test_quantize_writes_an_int8_twin_and_its_card(tmp_path: Path) -> None:
    model, _ = quantized(tmp_path)
    twin = model / "model.int8.onnx"
    graph = onnx.load(str(twin))
    kinds = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= kinds, kinds
    eight_bit = sorted(list(i.dims) for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8)
    assert [3, 8, 3, 3] in eight_bit and [8, 3, 3, 3] in eight_bit  # both convolutions' weights are 8-bit
    card = tomllib.loads((model / "model.toml").read_text())
    q = card["int8"]
    assert q["file"] == "model.int8.onnx" and q["from_sha256"] == file_sha256(model / "model.onnx")
    assert q["calibrated_on"] == 8 and q["checked_on"] == 8 and q["calibration"] == ["room.mp4"]
    assert 0 <= q["mean_diff"] <= 3.0 and q["ms_int8"] > 0 and q["ms_fp32"] > 0
    assert card["name"] == "tiny" and card["provenance"]["made_by"] == "tests/conftest.py"  # the rest kept
    # "auto" runs the twin on the CPU, "fp32" model.onnx; their pictures are near, not the same graph
    auto, fp32 = load_model(model, "cpu"), load_model(model, "cpu", precision="fp32")
    assert (auto.precision, auto.graph.name) == ("int8", "model.int8.onnx")
    assert (fp32.precision, fp32.graph.name) == ("fp32", "model.onnx")
    picture = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    a, b = auto.infer(picture).astype(int), fp32.infer(picture).astype(int)
    assert 0 < np.abs(a - b).mean() < 6


def test_the_twins_integer_kernels_paint_its_own_arithmetic_on_this_cpu(tmp_path: Path) -> None:
    """Whatever this CPU's integer kernels are (VNNI, or AVX2's saturating VPMADDUBSW), the twin's fast run
    paints what its quantized arithmetic says: ONNX Runtime without graph optimizations runs the same QDQ graph
    as float maths on the dequantized values, with no integer kernel to saturate."""
    import onnxruntime as ort

    model, _ = quantized(tmp_path)
    card = tomllib.loads((model / "model.toml").read_text())
    assert card["int8"]["weights"].startswith("int8 holding 7 bits")
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    twin = str(model / "model.int8.onnx")
    kernels = ort.InferenceSession(twin, providers=["CPUExecutionProvider"])
    arithmetic = ort.InferenceSession(twin, plain, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    name = kernels.get_inputs()[0].name
    fast, exact = kernels.run(None, {name: x})[0], arithmetic.run(None, {name: x})[0]
    assert np.abs(fast - exact).mean() * 127.5 < 0.25  # grey levels; full-range weights gave 2.3 without VNNI


def test_a_show_plays_the_twin_and_check_says_so(tmp_path: Path) -> None:
    model, clip = quantized(tmp_path)
    pictures = []
    for precision in ("int8", "fp32"):
        show = small_show(tmp_path, model=model, file=f"{precision}.toml")
        show.write_text(show.read_text().replace("[model]\n", f'[model]\nprecision = "{precision}"\n', 1))
        out = tmp_path / f"{precision}.mp4"
        r = run_cli(["rehearse", show, "--headless", "--video", clip, "--lockstep", "--frames", 12, "--record", out],
                    tmp_path)
        assert r.returncode == 0, r.stderr
        assert ("via CPUExecutionProvider, int8" in r.stderr) == (precision == "int8"), r.stderr
        pictures.append(np.stack(frames_of(out)).astype(int))
        c = run_cli(["check", show], tmp_path)
        assert c.returncode == 0, c.stdout + c.stderr
        line = next(ln for ln in c.stdout.splitlines() if ln.startswith("precision:"))
        assert line.startswith(f"precision: {precision} (model.{'int8.' if precision == 'int8' else ''}onnx"), line
        model_line = next(ln for ln in hud_after(show, 1.0, clip) if ln.startswith("model tiny"))
        assert model_line.endswith(f"via CPU {precision}"), model_line  # what the technician reads
    int8, fp32 = pictures
    assert int8.shape == fp32.shape and len(int8) == 12
    assert np.abs(int8 - fp32).mean() < 8  # the same look, within the bar and the codec's loss


def test_a_show_asking_for_int8_without_a_twin_is_refused_by_check(tmp_path: Path) -> None:
    model = make_model_folder(tmp_path / "models" / "tiny")
    show = small_show(tmp_path, model=model)
    show.write_text(show.read_text().replace("[model]\n", '[model]\nprecision = "int8"\n', 1))
    r = run_cli(["check", show], tmp_path)
    said = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in said, said
    assert "model.precision" in said and "no int8 version" in said and f"installation quantize {model}" in said
    plain = run_cli(["check", small_show(tmp_path, model=model, file="plain.toml")], tmp_path)
    assert plain.returncode == 0 and "precision: fp32 (model.onnx; no int8 version" in plain.stdout, plain.stdout


def test_a_twin_too_far_from_the_model_is_not_written(tmp_path: Path) -> None:
    model = make_model_folder(tmp_path / "models" / "tiny")
    card_before = (model / "model.toml").read_bytes()
    r = run_cli(["quantize", model, make_clip(tmp_path / "room.mp4"), "--pictures", 16, "--max-diff", "0"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "nothing was written" in r.stderr and "grey levels" in r.stderr
    assert not (model / "model.int8.onnx").exists() and (model / "model.toml").read_bytes() == card_before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sym_shape") or p.suffix == ".data"]


def test_not_a_model_folder(tmp_path: Path) -> None:
    r = run_cli(["quantize", tmp_path / "nothing"], tmp_path)
    assert r.returncode == 2 and "not a model folder" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_stale_twin_is_left_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model, _ = quantized(tmp_path)
    make_tiny_onnx(model / "model.onnx", 64, seed=7)  # model.onnx replaced by hand since the twin was made
    with caplog.at_level(logging.WARNING, logger="installation.models"):
        m = load_model(model, "cpu")
    assert m.precision == "fp32" and "made from another model.onnx" in caplog.text
    with pytest.raises(UserError, match=r"made from another model\.onnx"):
        load_model(model, "cpu", precision="int8")
