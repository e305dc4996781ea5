"""Training settings beyond pix2pix's: named recipes, the loss weights, instance norm; each recorded in the
checkpoint, carried into the export, and a bad value refused with the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from installation.cli import main
from installation.training.checkpoint import load_checkpoint
from tests.test_resume import pictures, tiny_command


@pytest.fixture(autouse=True, scope="module")
def one_thread(torch_one_thread):
    yield


def test_a_recipe_sets_its_fields_and_stays_with_the_run(tmp_path, capsys):
    from installation.training.train_cli import RECIPES

    folder = pictures(tmp_path / "pics", 2, seed=5)
    run = tmp_path / "run"
    assert main([*tiny_command(folder, run, 2), "--recipe", "texture", "--set", "gan_weight=2"]) == 0
    cfg = load_checkpoint(run / "latest.pt")["config"]
    assert cfg["recipe"] == "texture"
    assert {k: cfg[k] for k in RECIPES["texture"] if k != "gan_weight"} == \
        {k: v for k, v in RECIPES["texture"].items() if k != "gan_weight"}
    assert cfg["gan_weight"] == 2  # --set after the recipe
    capsys.readouterr()
    assert main(["train", "--resume", str(run / "latest.pt"), "--recipe", "pix2pix"]) == 2
    assert "--recipe: fixed by the checkpoint" in capsys.readouterr().err


def test_instance_norm_trains_and_exports(tmp_path):
    import onnx

    folder = pictures(tmp_path / "pics", 2, seed=6)
    run = tmp_path / "run"
    assert main([*tiny_command(folder, run, 2), "--set", "norm=instance", "--set", "l1_weight=10"]) == 0
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["arch"]["norm"] == "instance" and ckpt["disc"]["norm"] == "instance"
    assert not any("running_mean" in k for k in ckpt["G"])  # no batch statistics to drift from training's
    assert main(["export", str(run / "latest.pt"), "--out", str(tmp_path / "model")]) == 0
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model" / "model.onnx")).graph.node}
    assert "InstanceNormalization" in ops and "BatchNormalization" not in ops


def test_unknown_norm_is_a_user_error(tmp_path, capsys):
    folder = pictures(tmp_path / "pics", 2, seed=7)
    assert main([*tiny_command(folder, tmp_path / "run", 2), "--set", "norm=group"]) == 2
    err = capsys.readouterr().err
    assert "norm 'group'" in err and "batch or instance" in err and "Traceback" not in err
    assert not Path(tmp_path / "run" / "latest.pt").exists()


def test_the_blur_pool_discriminator_is_recorded_and_refused_beside_blur(tmp_path, capsys):
    folder = pictures(tmp_path / "pics", 2, seed=8)
    run = tmp_path / "run"
    assert main([*tiny_command(folder, run, 2), "--set", "d_blur_pool=true"]) == 0
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["disc"]["blur_pool"] is True and ckpt["config"]["d_blur_pool"] is True
    plain = tmp_path / "plain"
    assert main([*tiny_command(folder, plain, 2)]) == 0
    assert "blur_pool" not in load_checkpoint(plain / "latest.pt")["disc"]  # runs without it: as before
    capsys.readouterr()
    assert main([*tiny_command(folder, tmp_path / "both", 2), "--set", "d_blur=true",
                 "--set", "d_blur_pool=true"]) == 2
    err = capsys.readouterr().err
    assert "d_blur and d_blur_pool both set" in err and "Traceback" not in err
