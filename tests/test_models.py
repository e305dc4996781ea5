"""Model folders, cards and a real ONNX Runtime session."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_tiny_onnx

from installation.core.errors import UserError
from installation.inference.models import choose_providers, infer_card, load_model, read_card


def test_model_folder_loads_and_infers(tiny_model):
    m = load_model(tiny_model)
    assert m.card.size == (64, 64) and m.backend.providers == ["CPUExecutionProvider"]
    out = m.infer(np.full((64, 64, 3), 128, np.uint8))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def test_card_round_trips(tiny_model):
    card = read_card(tiny_model / "model.toml")
    assert card.name == "tiny" and card.value_range == (-1.0, 1.0)
    assert [s.kind for s in card.chain.steps] == ["flip", "crop", "resize"]


def test_bare_onnx_with_dynamic_batch_gets_an_inferred_card(tmp_path):
    path = make_tiny_onnx(tmp_path / "other_trainer.onnx", size=96, dynamic_batch=True, opset=11)
    m = load_model(path)
    assert m.card.inferred and m.card.size == (96, 96) and m.card.layout == "NCHW"
    assert m.infer(np.zeros((96, 96, 3), np.uint8)).shape == (96, 96, 3)


def test_non_image_input_is_refused_with_the_file_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    path = tmp_path / "vec.onnx"
    onnx.save(helper.make_model(g), str(path))
    with pytest.raises(UserError) as e:
        infer_card(path)
    assert "vec.onnx" in e.value.render() and "rank 4" in e.value.render()


def test_corrupt_model_file_is_a_user_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.onnx").write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(UserError):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("bad, key", [
    ("schema = 2\n", "schema"),
    ("schema = 1\n[input]\nsize = [0, 3]\n", "input.size"),
    ("schema = 1\n[input]\nsize = [8, 8]\nlayout = \"CHW\"\n", "input.layout"),
    ("schema = 1\n[input]\nsize = [8, 8]\nvalue_range = [1, -1]\n", "input.value_range"),
    ("schema = 1\n[input]\nsize = [8, 8]\n[[preprocess]]\nstep = \"nope\"\n", "preprocess[0].step"),
    ("schema = = 1", None),
])
def test_bad_cards_name_file_and_key(tmp_path, bad, key):
    p = tmp_path / "model.toml"
    p.write_text(bad)
    with pytest.raises(UserError) as e:
        read_card(p)
    assert str(p) in e.value.render()
    if key:
        assert e.value.key == key


def test_provider_choice_always_ends_with_cpu():
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"
    assert choose_providers(["cuda", "cpu"])[-1] == "CPUExecutionProvider"


def test_a_model_name_is_looked_up_in_order_and_a_path_is_relative_to_the_show(tmp_path):
    from installation.inference.models import find_model

    show_dir, installed = tmp_path / "show", tmp_path / "installed"
    make_tiny_onnx(show_dir / "models" / "blue" / "model.onnx")
    make_tiny_onnx(installed / "blue" / "model.onnx")
    make_tiny_onnx(installed / "green.onnx")
    dirs = [show_dir / "models", installed]
    assert find_model("blue", show_dir, dirs) == show_dir / "models" / "blue", "the show's own folder first"
    assert find_model("green", show_dir, dirs) == installed / "green.onnx", "then the installed models"
    assert find_model("models/blue", show_dir, dirs) == show_dir / "models" / "blue"
    assert find_model("../installed/green.onnx", show_dir, dirs) == installed / "green.onnx"
    with pytest.raises(UserError) as e:
        find_model("red", show_dir, dirs)
    assert "no model named 'red'" in str(e.value) and str(installed) in str(e.value)


def test_show_backend_auto_and_onnx_pass_torch_needs_cuda(tmp_path):
    from installation.inference.models import show_backend
    from installation.inference.torch_backend import cuda_status

    assert show_backend("auto", None) is None
    assert show_backend("onnx", None) == "onnx"
    if cuda_status()[0]:
        assert show_backend("torch", tmp_path / "s.toml") == "torch"
    else:
        with pytest.raises(UserError) as e:
            show_backend("torch", tmp_path / "s.toml")
        assert e.value.key == "model.backend" and "s.toml" in str(e.value)


def test_the_cpu_record_names_this_cpu_and_its_8_bit_flags():
    """One place says what CPU this is (core/cpu.py): bench, --stats, the int8 verdict and quantize's card
    timings all name it so; here it is judged against /proc/cpuinfo read apart."""
    from conftest import assert_names_this_cpu

    from installation.core.cpu import cpu_cores, cpu_name, cpu_record
    from installation.inference import models

    record = cpu_record()
    assert_names_this_cpu(record)
    assert record["name"] == cpu_name() == models.cpu_name() and record["cores"] == cpu_cores() >= 1
