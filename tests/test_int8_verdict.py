"""An int8 twin is judged on the machine that plays it: at load (and in `check`) the twin and model.onnx paint
the same few pictures here, measured as quantize measures them, against quantize's bar. Beyond it the show
plays model.onnx and says so once: in the log, the HUD's model line and `check`. The verdict is kept in the
user's cache folder per twin, CPU and ONNX Runtime version, and a second start reads it instead of judging.

The twins here are real graphs: a copy of model.onnx (as good as a twin gets), a network with other weights
(a twin made from another model: far off), and the shipped looks' int8 twins (made on another CPU)."""

from __future__ import annotations

import json
import logging
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from installation.core.errors import UserError
from installation.core.tomlout import toml_table
from installation.inference.models import file_sha256, load_model
from installation.inference.twin import MAX_DIFF, VERDICTS
from tests.conftest import cpuinfo_facts, make_model_folder, make_tiny_onnx, small_show
from tests.scenarios.conftest import hud_after, run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own (the verdicts live there), for this process and the commands it runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "installation" / VERDICTS


def with_twin(folder: Path, twin_from: Path | None = None, seed: int = 7) -> Path:
    """A tiny model folder whose [int8] twin is `twin_from`'s bytes, or else a network of other weights."""
    make_model_folder(folder, size=64)
    twin = folder / "model.int8.onnx"
    if twin_from is not None:
        shutil.copyfile(twin_from, twin)
    else:
        make_tiny_onnx(twin, 64, seed=seed)
    card = folder / "model.toml"
    # the figures a quantizer on another CPU might have written: the card says nothing about this one
    table = {"file": twin.name, "from_sha256": file_sha256(folder / "model.onnx"), "mean_diff": 0.5,
             "worst_diff": 0.6, "ms_fp32": 1.0, "ms_int8": 0.8}
    text = card.read_text()
    head, sep, tail = text.partition("[[preprocess]]")
    card.write_text(head + "\n".join(toml_table("int8", table)) + "\n" + sep + tail)
    assert tomllib.loads(card.read_text())["int8"]["file"] == "model.int8.onnx"
    return folder


def precision_line(stdout: str) -> str:
    return next(ln for ln in stdout.splitlines() if ln.startswith("precision:"))


def test_a_twin_from_another_model_is_refused_and_model_onnx_plays(tmp_path, cache, caplog) -> None:
    model = with_twin(tmp_path / "models" / "odd")
    with caplog.at_level(logging.INFO, logger="installation.models"):
        m = load_model(model, "cpu")
    assert (m.precision, m.graph.name) == ("fp32", "model.onnx")
    assert m.verdict is not None and not m.verdict.ok and m.verdict.mean > MAX_DIFF
    refusals = [r.getMessage() for r in caplog.records if "beyond the bar on this CPU" in r.getMessage()]
    assert len(refusals) == 1 and "playing model.onnx (fp32) instead" in refusals[0], caplog.text
    # the picture is model.onnx's, exactly
    fp32 = load_model(model, "cpu", precision="fp32")
    picture = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.array_equal(m.infer(picture), fp32.infer(picture))
    assert m.precision_said.startswith("fp32 (int8 refused here: ")

    # `check` says it, from the verdict kept by the load above
    show = small_show(tmp_path, model=model)
    c = run_cli(["check", show], tmp_path)
    assert c.returncode == 0, c.stdout + c.stderr
    line = precision_line(c.stdout)
    assert line.startswith("precision: fp32 (model.onnx; the int8 twin model.int8.onnx is refused here: "), line
    assert f"bar {MAX_DIFF:g}" in line and "verdict cached" in line, line
    # and the show plays on, saying it once in the log and in the HUD's model line
    r = run_cli(["rehearse", show, "--headless", "--frames", "10"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("beyond the bar on this CPU") == 1, r.stderr
    model_line = next(ln for ln in hud_after(show, 1.0) if ln.startswith("model tiny "))
    assert "via CPU fp32 (int8 refused here: " in model_line, model_line


def test_a_good_twin_plays_and_its_verdict_is_judged_once(tmp_path, cache) -> None:
    model = with_twin(tmp_path / "models" / "same", twin_from=tmp_path / "models" / "same" / "model.onnx")
    show = small_show(tmp_path, model=model)
    first = run_cli(["check", show], tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    line = precision_line(first.stdout)
    assert line.startswith("precision: int8 (model.int8.onnx: 0.00 grey levels from model.onnx"), line
    assert "judged now" in line, line
    (kept,) = cache.glob("*.json")  # one verdict, for this twin on this CPU and ONNX Runtime
    verdict = json.loads(kept.read_text())
    name, flags = cpuinfo_facts()
    assert verdict["twin_sha256"] == file_sha256(model / "model.int8.onnx") and verdict["mean"] == 0
    assert name in verdict["cpu"] and ("no VNNI" in verdict["cpu"]) == (not flags & {"avx512_vnni", "avx_vnni"})
    import onnxruntime

    assert verdict["onnxruntime"] == onnxruntime.__version__
    second = run_cli(["check", show], tmp_path)
    assert "verdict cached" in precision_line(second.stdout) and "judged now" not in second.stdout + second.stderr
    assert list(cache.glob("*.json")) == [kept]
    m = load_model(model, "cpu")
    assert (m.precision, m.graph.name, m.precision_said) == ("int8", "model.int8.onnx", "int8")

    # another twin (other bytes) is judged anew; a show that pins int8 plays it even beyond the bar, saying so
    odd = with_twin(tmp_path / "models" / "odd")
    pinned = load_model(odd, "cpu", precision="int8")
    assert (pinned.precision, pinned.graph.name) == ("int8", "model.int8.onnx") and not pinned.verdict.ok
    assert pinned.precision_said.startswith("int8 (beyond the bar here: ")
    assert len(list(cache.glob("*.json"))) == 2


def test_a_twin_that_cannot_run_here_leaves_model_onnx_playing(tmp_path, cache, caplog) -> None:
    model = with_twin(tmp_path / "models" / "broken")
    (model / "model.int8.onnx").write_bytes(b"not a graph")  # damaged in a copy; the card still names it
    with caplog.at_level(logging.WARNING, logger="installation.models"):
        m = load_model(model, "cpu")
    assert (m.precision, m.graph.name, m.verdict) == ("fp32", "model.onnx", None)
    (line,) = [r.getMessage() for r in caplog.records if "model.int8.onnx" in r.getMessage()]
    assert "can't be run here" in line and "running model.onnx" in line and "installation quantize" in line
    with pytest.raises(UserError) as e:
        load_model(model, "cpu", precision="int8")
    assert e.value.key == "model.precision" and "can't be run here" in e.value.message
    assert not list(cache.glob("*.json")), "nothing judged, nothing kept"


@pytest.mark.parametrize("look", ["default", "leaves", "bloom"])
def test_a_shipped_twin_plays_where_this_cpu_keeps_it_within_the_bar(look, tmp_path, cache) -> None:
    """The shipped twins were made on a CPU with VNNI: here each plays or is refused by its figure on this CPU,
    and the picture is the graph's that was chosen."""
    m = load_model(ROOT / "models" / look, "cpu")
    assert m.verdict is not None and m.verdict.pictures >= 4
    assert (m.precision == "int8") == (m.verdict.mean <= MAX_DIFF), m.verdict
    chosen = "model.int8.onnx" if m.verdict.ok else "model.onnx"
    assert m.graph.name == chosen
    photo = np.random.default_rng(0).integers(0, 256, (*m.card.size, 3), dtype=np.uint8)
    same = load_model(ROOT / "models" / look, "cpu", precision="int8" if m.verdict.ok else "fp32")
    assert np.array_equal(m.infer(photo), same.infer(photo))
