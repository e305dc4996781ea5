"""The shipped looks: no checkerboard in their own pictures, and cards that say whose photographs they learnt.

The spike figure is made from each model's output through a real ONNX Runtime session, on
photographs of people and rooms that no look's training set uses, so a retrained model that brings
the grid back fails here; both for model.onnx and for the int8 twin the show plays on the CPU. Nothing
is timed (the bench reports inference times).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from installation.training.quality import held_back_photographs, model_spike_figure, spike_figure
from installation.vision.preprocess import Chain

ROOT = Path(__file__).resolve().parent.parent
LOOKS = ("default", "leaves", "bloom")  # models/default is the main look (water)
PRECISIONS = ("fp32", "int8")  # model.onnx and its twin (model.int8.onnx), which the show plays on the CPU
PEOPLE = ("grace_hopper", "camera")
LICENCES = ("LGPLv3", "GPL-2+", "CC-BY-SA-4.0")  # what the Debian packages' pictures are under


@pytest.fixture(scope="module")
def photographs() -> dict[str, np.ndarray]:
    return held_back_photographs()


def test_the_figure_tells_a_grid_from_a_photograph(photographs):
    plain = Chain.from_spec("plain", 256)
    portrait = plain.apply(photographs["grace_hopper"])[0]
    assert spike_figure(portrait) < 8
    # a faint period-4 grid, 3 grey levels up and down, as an undertrained transposed-conv decoder leaves
    y, x = np.mgrid[:256, :256]
    grid = np.where(((y // 2) + (x // 2)) % 2 == 0, 3, -3)[..., None]
    gridded = np.clip(portrait.astype(int) + grid, 0, 255).astype(np.uint8)
    assert spike_figure(gridded) > 3 * spike_figure(portrait)
    assert spike_figure(gridded) > 15


def test_held_back_photographs_are_people_and_a_room(photographs):
    assert set(photographs) == {"grace_hopper", "camera", "motorcycle_left"}
    for name, pic in photographs.items():
        assert pic.dtype == np.uint8 and pic.ndim == 3 and pic.shape[2] == 3, name
        assert min(pic.shape[:2]) >= 256, name


@pytest.fixture(scope="module")
def figures(photographs) -> dict[tuple[str, str], dict[str, float]]:
    return {(look, p): model_spike_figure(ROOT / "models" / look, photographs, precision=p)
            for look in LOOKS for p in PRECISIONS}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("look", LOOKS)
def test_shipped_look_paints_no_grid_on_people(look, precision, figures):
    f = figures[look, precision]
    for name in PEOPLE:
        assert f[name] <= 10, (look, precision, f)


def test_every_look_paints_no_grid_on_the_portrait(figures):
    for (look, precision), f in figures.items():
        assert f["grace_hopper"] <= 10, (look, precision, f)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("look", LOOKS)
def test_shipped_look_paints_no_grid_on_a_room(look, precision, figures, photographs):
    # the room has a regular structure of its own (slats, spokes): the model may keep it, not add to it
    room = spike_figure(Chain.from_spec("plain", 256).apply(photographs["motorcycle_left"])[0])
    f = figures[look, precision]
    assert f["motorcycle_left"] <= max(10.0, room), (look, precision, f, room)


@pytest.mark.parametrize("look", LOOKS)
def test_shipped_card_names_its_photographs_and_their_licences(look):
    card = tomllib.loads((ROOT / "models" / look / "model.toml").read_text())
    prov = card["provenance"]
    photos = prov["photographs"]
    assert len(photos) >= 4
    for p in photos:
        assert p["author"].strip() and p["licence"] in LICENCES, p
        assert p["package"] in ("plasma-workspace-wallpapers", "mate-backgrounds"), p
        assert p["id"] in prov["data"] and p["licence"] in prov["data"], p
    assert not {p["id"] for p in photos} & set(held_back_photographs())
    # reproducible from the card: the fetch, the training command, and what it gave
    assert "scripts/fetch_photos.py" in prov["reproduce"] and "scripts/train_looks.py" in prov["reproduce"]
    assert prov["train_command"].startswith("installation train ")
    # a branch (train --from) names the run it left, which learnt from the target pictures
    first = prov["branched_from"]["command"] if "branched_from" in prov else prov["train_command"]
    assert "--from-targets" in first and ("--from " in prov["train_command"]) == ("branched_from" in prov)
    assert "upsample=bilinear" in first
    assert prov["arch"]["upsample"] == "bilinear"
    assert prov["epochs"] >= 10 and prov["training_seconds"] > 0
    spiked = "G_spike" in prov["final_losses"]  # a recipe with the spike penalty logs its term too
    elsewhere = ["G_spike_from"] if "spike_from=" in prov["train_command"] else []
    assert set(prov["final_losses"]) == {"G_GAN", "G_L1", "D_real", "D_fake", *(["G_spike"] if spiked else []),
                                         *elsewhere}
    assert spiked == any(w in c for c in (first, prov["train_command"]) for w in ("texture-spike", "spike_weight="))
    assert set(prov["spike_figure"]) == set(held_back_photographs())  # measured at export, on the card
