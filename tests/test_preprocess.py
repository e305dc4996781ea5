"""The one preprocessing definition: steps, chains, the training view and the live view."""

from __future__ import annotations

import numpy as np
import pytest

from installation.app import default_registry
from installation.core.params import ParamStore
from installation.vision.preprocess import (
    NAMED_CHAINS,
    STEPS,
    Chain,
    ChainError,
    ChainState,
    crop_box,
    from_tensor,
    to_tensor,
)


def picture(h: int = 120, w: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = (200, 30, 30)
    img[h // 3: 2 * h // 3, w // 4: 3 * w // 4] = (20, 200, 90)
    return (img + rng.integers(0, 20, img.shape)).clip(0, 255).astype(np.uint8)


def test_every_named_chain_builds_and_gives_model_sized_three_channel_input():
    for name in NAMED_CHAINS:
        chain = Chain.from_spec(name, 64)
        x, mask = chain.apply(picture(), np.ones((120, 200), np.float32))
        assert x.shape == (64, 64, 3) and x.dtype == np.uint8, name
        assert mask is not None and mask.shape == (64, 64), name


def test_live_view_at_card_values_equals_training_view_for_stateless_chains():
    """Training and show can't drift: at the card's values the live chain computes the same picture."""
    store = ParamStore(default_registry())
    spec = [{"step": "flip"}, {"step": "crop"}, {"step": "resize"}, {"step": "grey"},
            {"step": "blur", "blur": 1.5}, {"step": "canny", "canny_low": 40, "canny_high": 120},
            {"step": "posterize", "posterize": 3}]
    chain = Chain.from_spec(spec, 64)
    for name, v in chain.param_values().items():
        store.set(name, v, ramp_s=0)
    live, _ = chain.apply_live(picture(), store.publish(), ChainState())
    train, _ = chain.apply(picture())
    assert np.array_equal(live, train)


def test_training_skips_temporal_steps_and_live_applies_them():
    chain = Chain.from_spec("edges", 32)
    assert all(not s.definition.live_only for s in chain.for_training().steps)
    assert any(s.kind == "lerp_input" for s in chain.steps)
    store = ParamStore(default_registry())
    store.set("pre/input_lerp", 0.9, ramp_s=0)
    state = ChainState()
    snap = store.publish()
    chain.apply_live(picture(seed=1), snap, state)
    b, _ = chain.apply_live(np.zeros_like(picture()), snap, state)
    assert b.mean() > 0, "the temporal blend remembers the previous input"
    c, _ = chain.apply(np.zeros_like(picture()))
    assert c.max() == 0, "training has no memory"


def test_geometric_steps_carry_the_mask():
    img = picture()
    mask = np.zeros((120, 200), np.float32)
    mask[:, :20] = 1.0  # the left edge
    chain = Chain.from_spec([{"step": "flip"}, {"step": "crop", "crop": "none"}, {"step": "resize"}], 50)
    _, m = chain.apply(img, mask)
    assert m[:, -5:].mean() > 0.9 and m[:, :20].mean() < 0.05, "mirrored with the picture"


def test_centre_crop_box():
    assert crop_box(720, 1280, 256, 256) == (0, 280, 720, 1000)
    assert crop_box(1000, 500, 1, 1) == (250, 0, 750, 500)


def test_fit_letterboxes_and_zeroes_the_mask_in_the_bars():
    chain = Chain.from_spec([{"step": "crop", "crop": "fit"}, {"step": "resize"}], 40)
    x, m = chain.apply(np.full((20, 40, 3), 255, np.uint8), np.ones((20, 40), np.float32))
    assert x[0].max() == 0 and x[20].min() == 255
    assert m[0].max() == 0 and m[20].min() == 1


def test_mask_step_modes():
    img = np.full((32, 32, 3), 200, np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    cut, _ = Chain.from_spec([{"step": "mask", "mask_mode": "cutout"}], 32).apply(img, mask)
    assert cut[0, 0].max() == 0 and cut[16, 16].min() == 200
    sil, _ = Chain.from_spec([{"step": "mask", "mask_mode": "silhouette"}], 32).apply(img, mask)
    assert sil[16, 16].min() == 255 and sil[0, 0].max() == 0


def test_feedback_blends_the_previous_output():
    chain = Chain.from_spec([{"step": "feedback", "feedback": 0.5}], 8)
    x, _ = chain.apply_live(np.zeros((8, 8, 3), np.uint8), {"pre/feedback": 0.5}, ChainState(),
                            prev_output=np.full((8, 8, 3), 200, np.uint8))
    assert x.mean() == pytest.approx(100, abs=1)


@pytest.mark.parametrize("spec, path", [
    ([{"step": "blurr"}], "preprocess[0].step"),
    ([{"step": "blur", "sigma": 2}], "preprocess[0].sigma"),
    ([{"step": "blur", "blur": "lots"}], "preprocess[0].blur"),
    ([{"nostep": 1}], "preprocess[0]"),
    ("nonsense", "preprocess"),
    ({"step": "blur"}, "preprocess"),
])
def test_bad_specs_name_the_key(spec, path):
    with pytest.raises(ChainError) as e:
        Chain.from_spec(spec, 32)
    assert e.value.path == path


def test_spec_round_trip():
    chain = Chain.from_spec("grey_blur_downscale", 64)
    assert Chain.from_spec(chain.to_spec(), 64) == chain


def test_each_step_argument_is_a_registered_parameter():
    reg = default_registry()
    for s in STEPS.values():
        for p in s.args.values():
            assert p.name in reg


def test_tensor_round_trip_and_range():
    img = picture()
    t = to_tensor(img)
    assert t.shape == (1, 3, 120, 200) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(from_tensor(t), img)
    assert to_tensor(np.zeros((2, 2, 3), np.uint8), (0, 1)).max() == 0


def test_a_low_resolution_mask_is_cut_by_the_same_box():
    """The segmenter's mask stays at its own (smaller) resolution: crop scales the box to it."""
    img = np.zeros((360, 640, 3), np.uint8)
    mask = np.zeros((180, 320), np.float32)
    mask[:, 150:170] = 1.0  # a stripe in the middle, at half resolution
    chain = Chain.from_spec([{"step": "flip", "flip": False}, {"step": "crop"}], 64)
    _, m = chain.apply(img, mask)
    assert m.shape == (180, 180), "the centre square of the half-resolution mask"
    cols = np.flatnonzero(m.mean(axis=0) > 0.5)
    assert (cols.min(), cols.max()) == (150 - 70, 169 - 70)
    fit = Chain.from_spec([{"step": "crop", "crop": "fit"}], 64)
    _, m = fit.apply(img, mask)
    assert m.shape == (320, 320) and m[:70].max() == 0 and m[70:250, 150:170].min() == 1
