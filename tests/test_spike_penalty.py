"""The spike penalty (training/spike_loss.py): it reads what quality.spike_figure reads, costs nothing on a
smooth picture or a photograph and much on a planted grid, its gradient takes the grid out and leaves the
picture, and a run with it records the setting, goes on with it and refuses to change it on resume."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from installation.cli import main
from installation.training.checkpoint import load_checkpoint
from installation.training.config import TrainConfig
from installation.training.quality import detail_figure, held_back_photographs, spike_figure, square
from installation.training.spike_loss import spike_penalty, spike_ratios
from tests.test_resume import pictures, tiny_command


@pytest.fixture(autouse=True, scope="module")
def one_thread(torch_one_thread):
    yield


def smooth(seed: int = 0) -> np.ndarray:
    """256x256 grey float32 in 0..255: blurred noise (soft shapes) and a photograph's faint sensor noise."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.normal(0, 1, (256, 256)).astype(np.float32), (0, 0), 6)
    base = 128 + 60 * base / base.std()
    return (base + rng.normal(0, 0.5, base.shape)).astype(np.float32)


def grid(period: int, amplitude: float = 3.0) -> np.ndarray:
    """A planted grid: a checkerboard of `period` px (2: the finest), what a strided network paints."""
    y, x = np.mgrid[0:256, 0:256]
    half = period // 2
    return (amplitude * (2 * ((x // half + y // half) % 2) - 1)).astype(np.float32)


def batch(*greys: np.ndarray) -> torch.Tensor:
    """Grey pictures in 0..255 as the generator's (B, 3, H, W) pictures in [-1, 1]."""
    return torch.stack([torch.from_numpy(g / 127.5 - 1).expand(3, -1, -1) for g in greys]).float()


@pytest.mark.parametrize("period", [2, 4, 8])
def test_the_ratios_are_the_spike_figure(period):
    pictures_ = [smooth(1), smooth(2) + grid(period), square(held_back_photographs()["camera"])[..., 0]]
    ratios = spike_ratios(batch(*[p.astype(np.float32) for p in pictures_]))
    for row, picture in zip(ratios, pictures_, strict=True):
        assert row.max().item() == pytest.approx(spike_figure(picture.astype(np.float32)), rel=1e-3)


def test_smooth_pictures_cost_nothing_photographs_little_and_grids_much():
    photo = square(held_back_photographs()["camera"])[..., 0].astype(np.float32)
    assert spike_penalty(batch(smooth(3))).item() < 0.05
    # the cameraman's worst bin is 5.2 times its neighbourhood's power (spike figure 5.2): a hair over the
    # margin of 5
    calm = spike_penalty(batch(photo)).item()
    assert calm < 0.2, calm
    for period in (2, 4, 8):
        planted = smooth(4) + grid(period)
        assert spike_figure(planted) > 1000  # a grid 3 grey levels strong, far over the bar of 10
        cost = spike_penalty(batch(planted)).item()
        assert cost > 100 and cost > 100 * calm, (period, cost, calm)


def test_its_gradient_takes_the_grid_out_and_leaves_the_picture():
    clean = smooth(5)
    planted = clean + grid(2, 0.1) + grid(4, 0.1)  # a tenth of a grey level: spike figure about 2,000
    x = batch(planted).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=1e-4)  # the trainer's optimiser
    for i in range(60):
        opt.zero_grad()
        spike_penalty(x).backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert i > 0 or x.grad.abs().sum() > 0  # once every bin is under the margin, no gradient at all
        opt.step()
    after = (x.detach()[0, 0].numpy() + 1) * 127.5
    assert spike_figure(planted) > 1000 and spike_figure(after) < 10, spike_figure(after)
    # what went is the grid, not the picture: far closer to the clean one than the planted, its fine detail
    # back to the clean one's
    assert np.abs(after - clean).mean() < 0.5 * np.abs(planted - clean).mean()
    assert abs(detail_figure(after) - detail_figure(clean)) < 0.25 * (detail_figure(planted) - detail_figure(clean))


def test_a_run_with_the_penalty_records_it_reports_it_and_keeps_it_on_resume(tmp_path, capsys):
    folder = pictures(tmp_path / "pics", 2, seed=11)
    run = tmp_path / "run"
    assert main([*tiny_command(folder, run, 2), "--set", "spike_weight=0.5"]) == 0
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["config"]["spike_weight"] == 0.5
    row = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert row["G_spike"] >= 0.0 and np.isfinite(row["G_spike"])
    capsys.readouterr()
    # another weight on resume would mix two runs under one name: refused like any other setting
    assert main(["train", "--resume", str(run / "latest.pt"), "--set", "spike_weight=0"]) == 2
    err = capsys.readouterr().err
    assert "--set: fixed by the checkpoint" in err and "Traceback" not in err
    assert main(["train", "--resume", str(run / "latest.pt"), "--epochs", "2", "--no-progress"]) == 0
    done = load_checkpoint(run / "latest.pt")
    assert done["epoch"] == 2 and done["config"]["spike_weight"] == 0.5
    assert all("G_spike" in r for r in done["losses"])


def test_a_run_without_it_is_as_before_and_old_checkpoints_read_it_as_off(tmp_path):
    folder = pictures(tmp_path / "pics", 2, seed=12)
    run = tmp_path / "run"
    assert main(tiny_command(folder, run, 2)) == 0
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["config"]["spike_weight"] == 0.0
    assert all("G_spike" not in r for r in ckpt["losses"])
    older = {k: v for k, v in ckpt["config"].items() if k != "spike_weight"}  # a checkpoint from before the key
    assert TrainConfig.from_dict(older).spike_weight == 0.0


def test_a_branch_goes_on_from_a_run_with_the_penalty_and_leaves_the_run_alone(tmp_path, capsys):
    """`train --from`: a new run, in its own folder, from another run's checkpoint (its weights, steps and
    networks), with other loss settings: how a long run of the texture recipe takes up the penalty."""
    folder = pictures(tmp_path / "pics", 2, seed=13)
    old = tmp_path / "old"
    assert main(tiny_command(folder, old, 2)) == 0
    before = (old / "latest.pt").read_bytes()
    new = tmp_path / "new"
    assert main(["train", "--from", str(old / "latest.pt"), "--out", str(new), "--epochs", "2",
                 "--set", "spike_weight=1e-4", "--set", "d_blur_pool=true", "--no-progress"]) == 0
    assert (old / "latest.pt").read_bytes() == before
    ckpt = load_checkpoint(new / "latest.pt")
    first = load_checkpoint(old / "latest.pt")
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 2 * first["global_step"]
    assert ckpt["config"]["spike_weight"] == 1e-4 and ckpt["disc"]["blur_pool"] is True
    assert ckpt["arch"] == first["arch"] and ckpt["chain"] == first["chain"]
    assert "G_spike" in ckpt["losses"][-1] and "G_spike" not in ckpt["losses"][0]
    assert "--from" in ckpt["command"] and len(ckpt["runs"]) == 2
    # and it resumes as a run of its own
    assert main(["train", "--resume", str(new / "latest.pt"), "--epochs", "3", "--no-progress"]) == 0
    assert load_checkpoint(new / "latest.pt")["config"]["spike_weight"] == 1e-4
    capsys.readouterr()
    for argv, said in ((["--out", str(old)], "--out is the old run's folder"),
                       (["--out", str(tmp_path / "x"), "--width", "8"], "--width: fixed by the checkpoint"),
                       ([], "no run folder given")):
        assert main(["train", "--from", str(old / "latest.pt"), *argv, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
    assert (old / "latest.pt").read_bytes() == before


def test_the_texture_spike_recipe_turns_the_penalty_on_and_the_others_name_it_off():
    from installation.training.config import RECIPES, train_config
    from tests.test_train_config import parse

    assert train_config(parse("pics", "--recipe", "texture-spike")).spike_weight == 1e-4
    assert train_config(parse("pics", "--recipe", "texture")).spike_weight == 0.0
    # every recipe names the new settings, so a look's run that differs in them is seen (scripts/train_looks.py)
    assert all({"spike_weight", "d_blur_pool"} <= set(r) for r in RECIPES.values())


def test_a_run_with_spike_from_charges_the_generators_picture_of_other_pictures_too(tmp_path, capsys):
    """spike_from: a folder of pictures that are not the targets (another set's photographs); each step the
    generator paints a batch of them, made by the run's own chain, and that picture pays the penalty too."""
    folder = pictures(tmp_path / "pics", 2, seed=14)
    others = pictures(tmp_path / "others", 3, seed=15)
    run = tmp_path / "run"
    assert main([*tiny_command(folder, run, 2), "--set", "spike_weight=0.5", "--set", f"spike_from={others}"]) == 0
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["config"]["spike_from"] == str(others)
    one_epoch = ckpt["G"]
    row = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(row["G_spike_from"]) and row["G_spike_from"] >= 0.0 and "G_spike" in row
    assert main(["train", "--resume", str(run / "latest.pt"), "--epochs", "2", "--no-progress"]) == 0
    done = load_checkpoint(run / "latest.pt")
    assert done["epoch"] == 2 and all("G_spike_from" in r for r in done["losses"])
    # the other pictures take part in the step: the same first epoch without them (the same seed, crops and
    # order) ends with another generator
    plain = tmp_path / "plain"
    assert main([*tiny_command(folder, plain, 2), "--set", "spike_weight=0.5"]) == 0
    without = load_checkpoint(plain / "latest.pt")["G"]
    assert any(not torch.equal(without[k], one_epoch[k]) for k in without)
    capsys.readouterr()


def test_spike_from_without_the_penalty_or_without_its_folder_is_refused(tmp_path, capsys):
    folder = pictures(tmp_path / "pics", 2, seed=16)
    assert main([*tiny_command(folder, tmp_path / "a", 1), "--set", f"spike_from={folder}"]) == 2
    err = capsys.readouterr().err
    assert "spike_from" in err and "spike_weight" in err and "Traceback" not in err
    missing = tmp_path / "no-such-folder"
    assert main([*tiny_command(folder, tmp_path / "b", 1), "--set", "spike_weight=0.5",
                 "--set", f"spike_from={missing}"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err
