"""The trainer: a tiny run learns, an interrupted run resumes exactly, two gloo processes train together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from installation.cli import main
from installation.training.dataset import BuildOptions, build_dataset
from installation.training.train import Interrupted, TrainConfig, Trainer, load_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def one_thread(torch_one_thread):
    yield


def pictures(folder: Path, n: int, seed: int = 0) -> Path:
    """Soft colour fields with a few discs: a mapping from their grey version back to colour is learnable."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.zeros((48, 64, 3), np.uint8)
        img[:] = rng.integers(40, 220, 3)
        for _ in range(2):
            colour = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(8, 56)), int(rng.integers(8, 40))), int(rng.integers(6, 14)), colour, -1)
        cv2.imwrite(str(folder / f"p{i:02d}.png"), img)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """12 train + 4 val pairs at 32x32, input = the grey picture ('grey' chain: flip, crop, resize, grey)."""
    root = tmp_path_factory.mktemp("data")
    spec = [{"step": "flip"}, {"step": "crop"}, {"step": "resize"}, {"step": "grey"}]
    build_dataset([pictures(root / "pics", 16)], root / "ds", spec, BuildOptions(size=32, val=0.25),
                  command="test", progress=False)
    return root / "ds"


def tiny(dataset: Path, out: Path, **kw) -> TrainConfig:
    base = {"dataset": str(dataset), "out": str(out), "width": 8, "d_width": 8, "epochs": 2, "batch_size": 4,
            "progress": False, "decay": 0.0}
    return TrainConfig(**{**base, **kw})


def test_tiny_run_lowers_l1(dataset, tmp_path):
    trainer = train(tiny(dataset, tmp_path / "run", epochs=8, repeat=2, lr=1e-3))
    l1 = [r["G_L1"] for r in trainer.history]
    assert len(l1) == 8
    assert l1[-1] < 0.75 * l1[0], l1
    run = tmp_path / "run"
    assert len((run / "losses.jsonl").read_text().splitlines()) == 8
    assert (run / "losses.png").stat().st_size > 1000
    grid = cv2.imread(str(run / "samples" / "epoch_0008.png"))
    assert grid.shape == (4 * 32, 3 * 32, 3)  # 4 rows of input | output | target
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["epoch"] == 8 and ckpt["size"] == 32 and ckpt["arch"]["depth"] == 5
    assert ckpt["chain"][-1] == {"step": "grey"} and ckpt["dataset"]["kind"] == "pairs"
    assert ckpt["config"]["lr"] == 1e-3 and len(ckpt["losses"]) == 8


def test_interrupted_run_resumes_where_it_stopped(dataset, tmp_path, capsys):
    # the reference: 2 epochs of 3 steps in one go
    whole = train(tiny(dataset, tmp_path / "whole"))

    def ctrl_c_at_step_4(t: Trainer) -> None:
        if t.global_step == 4:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal, through the trainer's handler

    with pytest.raises(Interrupted) as e:
        train(tiny(dataset, tmp_path / "cut"), on_step=ctrl_c_at_step_4)
    assert (e.value.epoch, e.value.step) == (1, 1)  # saved mid-epoch, after the step in flight
    saved = load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert (saved["epoch"], saved["step"], saved["global_step"]) == (1, 1, 4)

    # resume through the command line, no flags repeated
    assert main(["train", "--resume", str(tmp_path / "cut" / "latest.pt"), "--no-progress"]) == 0
    done = load_checkpoint(tmp_path / "cut" / "latest.pt")
    assert done["epoch"] == 2 and done["global_step"] == 6
    ref = whole.checkpoint()
    for key, value in ref["G"].items():
        torch.testing.assert_close(done["G"][key], value, atol=1e-6, rtol=1e-5, msg=key)
    assert [round(r["G_L1"], 5) for r in done["losses"]] == [round(r["G_L1"], 5) for r in ref["losses"]]
    lines = (tmp_path / "cut" / "losses.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_resume_can_extend_but_not_change_the_run(dataset, tmp_path, capsys):
    train(tiny(dataset, tmp_path / "run", epochs=1))
    ckpt = str(tmp_path / "run" / "latest.pt")
    assert main(["train", "--resume", ckpt, "--width", "16"]) == 2
    assert "--width: fixed by the checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", ckpt, "--epochs", "2", "--no-progress"]) == 0
    assert load_checkpoint(ckpt)["epoch"] == 2


def test_from_targets_makes_inputs_on_the_fly(tmp_path):
    folder = pictures(tmp_path / "targets", 3, seed=4)
    rc = main(["train", str(folder), "--from-targets", "--chain", "grey_blur_downscale", "--size", "32",
               "--width", "4", "--epochs", "1", "--out", str(tmp_path / "run"), "--set", "d_width=4",
               "--set", "repeat=2", "--no-progress"])
    assert rc == 0
    ckpt = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ckpt["dataset"] == {"path": str(folder), "kind": "targets", "images": 3}
    assert [s["step"] for s in ckpt["chain"]] == ["flip", "crop", "resize", "grey", "downscale", "lerp_output"]
    assert ckpt["global_step"] == 2  # 6 samples in batches of 4
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()


def test_bad_training_input_is_a_user_error(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["train", str(tmp_path / "plain"), "--out", str(tmp_path / "run")]) == 2
    assert "dataset.toml" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "plain"), "--from-targets", "--out", str(tmp_path / "run")]) == 2
    assert "no images" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", str(tmp_path / "junk.pt")]) == 2
    assert "junk.pt" in capsys.readouterr().err


def test_two_gloo_processes_under_torchrun(dataset, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "installation.training.train_cli", str(dataset), "--out", str(run), "--epochs", "2",
           "--width", "4", "--set", "d_width=4", "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stderr
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["world_size"] == 2
    # 12 pairs split over 2 ranks: 6 each, 2 batches of up to 4 an epoch (one process would take 3)
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 4
    assert len((run / "losses.jsonl").read_text().splitlines()) == 2


def test_new_runs_record_the_resize_decoder_and_export_without_transposed_convs(tmp_path):
    import onnx

    folder = pictures(tmp_path / "targets", 2, seed=5)
    assert main(["train", str(folder), "--from-targets", "--chain", "grey_blur_downscale", "--size", "32",
                 "--width", "4", "--epochs", "1", "--out", str(tmp_path / "run"), "--set", "d_width=4",
                 "--no-progress"]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ckpt["arch"]["upsample"] == "bilinear"
    row = json.loads((tmp_path / "run" / "losses.jsonl").read_text().splitlines()[-1])
    assert row["spike"] > 0  # the samples' checkerboard figure, each epoch
    assert main(["export", str(tmp_path / "run" / "latest.pt"), "--out", str(tmp_path / "model")]) == 0
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model" / "model.onnx")).graph.node}
    assert "Resize" in ops and "ConvTranspose" not in ops
    card = (tmp_path / "model" / "model.toml").read_text()
    assert 'upsample = "bilinear"' in card


def test_unknown_upsample_is_a_user_error(tmp_path, capsys):
    folder = pictures(tmp_path / "targets", 2, seed=6)
    assert main(["train", str(folder), "--from-targets", "--size", "32", "--width", "4", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--set", "upsample=deconv", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "upsample 'deconv'" in err and "transpose or nearest or bilinear" in err and "Traceback" not in err
