"""The exporter: PyTorch/ONNX Runtime parity, pix2pix checkpoints, plain ONNX models, refusals."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import make_clip
from test_networks import RefResnetGenerator, RefUnetGenerator, _randomise
from torch import nn

from installation.cli import main
from installation.core.errors import UserError
from installation.inference.models import infer_card, load_model
from installation.training.checkpoint import build_generator, load_checkpoint
from installation.training.dataset import BuildOptions, build_dataset
from installation.training.export import export_model
from installation.training.networks import define_G
from installation.training.train import TrainConfig, train
from installation.vision.preprocess import from_tensor, to_tensor

# the tests export reference networks with the TorchScript-based exporter, as the exporter does
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread(torch_one_thread):
    yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real (if brief) training run at 32x32 with the edges chain."""
    root = tmp_path_factory.mktemp("exp")
    pics = root / "pics"
    pics.mkdir()
    rng = np.random.default_rng(2)
    for i in range(8):
        img = np.full((40, 40, 3), rng.integers(0, 255, 3), np.uint8)
        cv2.rectangle(img, (int(rng.integers(0, 20)), 5), (30, 35), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        cv2.imwrite(str(pics / f"{i}.png"), img)
    build_dataset([pics], root / "ds", "edges", BuildOptions(size=32, val=0.25), command="test", progress=False)
    train(TrainConfig(dataset=str(root / "ds"), out=str(root / "run"), width=8, d_width=8, epochs=2,
                      batch_size=2, progress=False))
    return root / "run" / "latest.pt"


def picture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    return img


def test_export_matches_pytorch_and_writes_a_card(checkpoint, tmp_path, capsys):
    out = tmp_path / "models" / "tiny"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max-abs difference" in printed and "within the fp32 tolerance 0.0001" in printed
    card = tomllib.loads((out / "model.toml").read_text())
    ckpt = load_checkpoint(checkpoint)
    assert card["input"]["size"] == [32, 32] and card["input"]["value_range"] == [-1.0, 1.0]
    assert card["preprocess"] == ckpt["chain"]  # the training chain, live-only steps included
    prov = card["provenance"]
    assert prov["epochs"] == 2 and prov["dataset"] == ckpt["dataset"]["path"]
    assert set(prov["final_losses"]) >= {"G_L1", "G_GAN", "D_real", "D_fake"}
    assert prov["versions"]["onnxruntime"] and prov["parity_max_abs"] <= 1e-4 and prov["exported"]

    # the runtime loads it, and its picture is the eval-mode generator's (no dropout, running statistics)
    model = load_model(out)
    G = build_generator(ckpt, checkpoint).eval()
    img = picture(32)
    with torch.no_grad():
        ref = G(torch.from_numpy(to_tensor(img))).numpy()
    got = model.backend.run(to_tensor(img))
    assert np.abs(got - ref).max() <= 1e-4
    assert np.abs(model.infer(img).astype(int) - from_tensor(ref).astype(int)).max() <= 1


def test_fp16_export_within_its_tolerance(checkpoint, tmp_path, capsys):
    res = export_model(checkpoint, tmp_path / "half", fp16=True)
    assert res.max_abs <= 2e-2 and res.tolerance == 2e-2
    model = load_model(tmp_path / "half")
    assert model.backend.input_dtype == np.float16
    assert model.infer(picture(32)).shape == (32, 32, 3)
    assert "fp16 tolerance" in capsys.readouterr().out


def test_a_model_over_the_tolerance_is_not_written(checkpoint, tmp_path, capsys):
    # Half precision cannot hold the float32 outputs to 1e-9: the exporter must refuse, and say by how much.
    with pytest.raises(UserError, match="model not written") as e:
        export_model(checkpoint, tmp_path / "m", fp16=True, tolerance=1e-9)
    assert e.value.file == str(checkpoint) and e.value.expected == "at most 1e-09"
    assert "OVER" in capsys.readouterr().out
    assert not (tmp_path / "m" / "model.onnx").exists() and not (tmp_path / "m" / "model.toml").exists()


@pytest.mark.parametrize("guess", [False, True])
def test_pix2pix_unet_checkpoint_converts_and_runs_the_same(tmp_path, guess):
    ref = _randomise(RefUnetGenerator(3, 3, 7, 4, use_dropout=True), seed=11)
    pth = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), pth)
    args = ["export", str(pth), "--out", str(tmp_path / "p2p"), "--chain", "edges"]
    assert main(args if guess else [*args, "--arch", "unet_128"]) == 0
    model = load_model(tmp_path / "p2p")
    assert model.card.size == (128, 128)
    assert model.card.provenance["converted_from"] == "pytorch pix2pix unet_128"
    assert [s.kind for s in model.card.chain.steps][-3:] == ["canny", "lerp_input", "lerp_output"]
    img = picture(128, seed=3)
    with torch.no_grad():
        want = ref(torch.from_numpy(to_tensor(img))).numpy()
    assert np.abs(model.backend.run(to_tensor(img)) - want).max() <= 1e-4


def test_pix2pix_resnet_checkpoint_exports(tmp_path):
    ref = _randomise(RefResnetGenerator(3, 3, 4, n_blocks=9), seed=12)
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    res = export_model(tmp_path / "latest_net_G.pth", tmp_path / "rn", arch="resnet_9blocks", size=64)
    assert res.max_abs <= 1e-4 and res.card.size == (64, 64)


def test_checkpoint_of_another_architecture_is_a_user_error(tmp_path, checkpoint, capsys):
    pth = tmp_path / "latest_net_G.pth"
    torch.save(RefResnetGenerator(3, 3, 4, n_blocks=9).state_dict(), pth)
    assert main(["export", str(pth), "--arch", "unet_256", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "latest_net_G.pth" in err and "resnet_9blocks, not unet_256" in err

    # our own format, naming one architecture and holding the weights of another
    ckpt = load_checkpoint(checkpoint)
    ckpt["G"] = define_G("unet", width=4, depth=5).state_dict()
    torch.save(ckpt, tmp_path / "swapped.pt")
    assert main(["export", str(tmp_path / "swapped.pt"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "swapped.pt" in err and "don't fit" in err and "width': 8" in err

    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "classifier.pth")
    assert main(["export", str(tmp_path / "classifier.pth"), "--out", str(tmp_path / "z")]) == 2
    assert "not of a pix2pix generator" in capsys.readouterr().err
    (tmp_path / "noise.pt").write_bytes(b"\x00" * 64)
    assert main(["export", str(tmp_path / "noise.pt"), "--out", str(tmp_path / "z")]) == 2
    assert "noise.pt" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def _workshop_onnx(path: Path) -> Path:
    """An ONNX as workshop trainers export them: tensors `input`/`output`, 512x512, dynamic batch, opset 11."""
    G = define_G("unet", width=2, depth=9).eval()
    torch.onnx.export(G, (torch.zeros(1, 3, 512, 512),), str(path), dynamo=False, opset_version=11,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    return path


def test_plain_workshop_onnx_loads_and_runs(tmp_path):
    import onnx

    path = _workshop_onnx(tmp_path / "workshop.onnx")
    assert onnx.load(str(path)).opset_import[0].version == 11
    model = load_model(path)
    assert model.card.inferred and model.card.size == (512, 512) and model.card.input_name == "input"
    out = model.infer(picture(512))
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    # and the exporter gives it a folder and a card with a chain
    assert main(["export", str(path), "--out", str(tmp_path / "w"), "--chain", "grey_blur_downscale"]) == 0
    folder_model = load_model(tmp_path / "w")
    assert not folder_model.card.inferred and folder_model.card.chain.steps[3].kind == "grey"


def test_onnx_with_a_non_image_input_is_a_user_error(tmp_path, capsys):
    path = tmp_path / "classifier.onnx"
    torch.onnx.export(nn.Linear(10, 3), (torch.zeros(1, 10),), str(path), dynamo=False, input_names=["x"])
    with pytest.raises(UserError) as e:
        infer_card(path)
    assert e.value.file == str(path)
    assert main(["export", str(path), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "classifier.onnx" in err and "image input" in err


def _installation(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "installation"
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_imported_onnx_card_claims_no_parity_figure(tmp_path):
    """No PyTorch original, no comparison: the card must not say 0.0 as if one had run."""
    path = tmp_path / "other.onnx"
    torch.onnx.export(nn.Conv2d(3, 3, 1).eval(), (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"])
    r = _installation("export", path, "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert "no parity check" in r.stdout
    prov = tomllib.loads((tmp_path / "m" / "model.toml").read_text())["provenance"]
    assert "parity_max_abs" not in prov and prov["imported"]


def test_exported_checkpoint_card_records_the_measured_figure(checkpoint, tmp_path):
    r = _installation("export", checkpoint, "--out", tmp_path / "m")
    assert r.returncode == 0, r.stderr
    printed = float(re.search(r"max-abs difference (\S+)", r.stdout).group(1))
    prov = tomllib.loads((tmp_path / "m" / "model.toml").read_text())["provenance"]
    assert prov["parity_max_abs"] == printed and 0 <= printed <= 1e-4


def test_a_new_export_removes_the_int8_twin_of_the_model_before(checkpoint, tmp_path, capsys):
    out = tmp_path / "models" / "tiny"
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    assert main(["quantize", str(out), str(make_clip(tmp_path / "room.mp4", frames=20)), "--pictures", "8",
                 "--max-diff", "255"]) == 0
    assert (out / "model.int8.onnx").is_file() and "int8" in tomllib.loads((out / "model.toml").read_text())
    capsys.readouterr()
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    assert "export: removed" in capsys.readouterr().out
    assert not (out / "model.int8.onnx").exists()
    assert "int8" not in tomllib.loads((out / "model.toml").read_text())
    assert load_model(out, providers="cpu").graph == out / "model.onnx"
