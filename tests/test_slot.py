"""The model slot's state machine (inference/slot.py), with real tiny ONNX models played by ONNX Runtime:
empty -> playing -> loading -> fading -> playing; a failed swap keeps the playing model; a model that
keeps failing is dropped, and a missing or dropped one is retried on its back-off until it plays."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_model_folder

from installation.app import default_registry
from installation.core.params import ParamStore
from installation.core.timing import Stats
from installation.inference.models import Model, load_model
from installation.inference.slot import ModelSlot


def open_model(path: Path) -> Model:
    return load_model(path, "cpu")


def make_slot(models: Path, **kw: object) -> tuple[ModelSlot, ParamStore, Stats]:
    store, stats = ParamStore(default_registry()), Stats()
    return ModelSlot(open_model, store, stats, dirs=[models], **kw), store, stats  # type: ignore[arg-type]


def settle(slot: ModelSlot, until: tuple[str, ...], now: float | None = None, timeout: float = 20.0) -> str:
    """Call update() as the main thread does, until the slot reaches one of `until` states (a loader
    thread posts its result back)."""
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        slot.update(now)
        if slot.state in until:
            return slot.state
        time.sleep(0.01)
    raise AssertionError(f"the slot stayed {slot.state!r}, waiting for {until}")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    make_model_folder(tmp_path / "models" / "first", size=32, name="first")
    make_model_folder(tmp_path / "models" / "second", size=48, chain="edges", name="second")
    return tmp_path / "models"


def test_empty_then_playing_then_a_swap_loads_fades_and_plays(models: Path) -> None:
    slot, store, stats = make_slot(models)
    assert slot.state == "empty" and slot.model is None and slot.crossfade() == 0.0
    slot.load(None)
    assert slot.state == "empty"  # no model in the show: the camera plays, nothing to retry
    slot.update(time.monotonic() + 3600)
    assert stats.counters["model_retries"] == 0

    slot.load(models / "first")
    assert slot.state == "playing" and slot.model is not None and slot.model.name == "first"
    assert slot.chain is slot.model.card.chain
    picture = slot.model.infer(np.full((32, 32, 3), 128, np.uint8))  # ONNX Runtime really runs it
    assert picture.shape == (32, 32, 3)

    store.set("model/crossfade", 30.0, ramp_s=0.0)
    store.publish()
    store.set("model/select", "second")
    slot.update()
    assert slot.state == "loading" and slot.loading_name == "second"
    assert slot.model.name == "first", "the playing model plays on while the other one loads"
    assert settle(slot, ("fading",)) == "fading"
    assert slot.incoming is not None and slot.loading_name == "second"
    assert 0.0 <= slot.crossfade() < 1.0
    memory = slot.incoming_state
    slot.update(time.monotonic() + 31.0)  # the crossfade's time is up
    assert slot.state == "playing" and slot.model.name == "second" and slot.incoming is None
    assert slot.chain_state is memory, "the temporal memory that faded in with the model goes on"
    assert store.target("pre/canny_low") == slot.model.card.chain.param_values()["pre/canny_low"]
    assert stats.counters["model_swaps"] == 1 and slot.error == ""


def test_with_nothing_playing_a_selected_model_plays_at_once(models: Path) -> None:
    slot, store, _ = make_slot(models)
    store.set("model/select", "second")
    assert settle(slot, ("playing",)) == "playing" and slot.model is not None and slot.model.name == "second"


def test_a_failed_swap_keeps_the_playing_model_and_clears_the_selection(models: Path) -> None:
    slot, store, stats = make_slot(models)
    slot.load(models / "first")
    store.set("model/select", "nowhere")
    slot.update()
    assert settle(slot, ("playing",)) == "playing"
    assert slot.model is not None and slot.model.name == "first"
    assert "swap to 'nowhere' failed" in slot.error and "no such model" in slot.error
    assert store.target("model/select") == "", "cleared: the same name again is a change, and retried"
    assert stats.faults["model"] == 1

    store.set("model/select", str(models / "second"))  # a path is never a name
    slot.update()
    settle(slot, ("playing",))
    assert stats.counters["model_select_refused"] == 1
    assert "a path" in slot.error and str(models) not in slot.error, "the HUD does not repeat the path"
    assert slot.model.name == "first"


def test_a_broken_model_file_fails_the_swap_not_the_show(models: Path) -> None:
    broken = models / "broken"
    make_model_folder(broken, size=32, name="broken")
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    slot, store, _ = make_slot(models)
    slot.load(models / "first")
    store.set("model/select", "broken")
    slot.update()
    settle(slot, ("playing",))
    assert slot.model is not None and slot.model.name == "first"
    assert "could not be loaded" in slot.error


def test_a_model_that_keeps_failing_is_dropped_and_retried_until_it_plays(models: Path) -> None:
    slot, _, stats = make_slot(models, fail_after=3, retry_s=10.0, retry_max_s=40.0)
    slot.load(models / "first")
    model = slot.model
    assert model is not None
    e = RuntimeError("the device went away")
    assert not slot.drop_failing(model, e) and not slot.drop_failing(model, e)
    slot.succeeded()  # one good frame: the count starts again
    assert not slot.drop_failing(model, e) and not slot.drop_failing(model, e)
    assert slot.drop_failing(model, e)
    assert slot.state == "dropped" and slot.model is None and slot.wanted == model.path
    assert "failed (RuntimeError: the device went away)" in slot.error

    t0 = time.monotonic()
    slot.update(t0)
    slot.update(t0 + 9.0)
    assert stats.counters["model_retries"] == 0, "not before retry_s"
    slot.update(t0 + 10.5)
    assert stats.counters["model_retries"] == 1
    assert settle(slot, ("playing",), now=t0 + 10.6) == "playing"
    assert slot.model is not None and slot.model.name == "first" and slot.error == ""


def test_a_missing_model_is_retried_with_back_off_and_the_show_values_win(tmp_path: Path, models: Path) -> None:
    later = tmp_path / "later"
    slot, store, stats = make_slot(models, retry_s=10.0, retry_max_s=25.0,
                                   config_values={"pre/canny_low": 12.0})
    slot.load(later)
    assert slot.state == "dropped" and slot.model is None and slot.error
    assert stats.faults["model"] == 1
    t0 = time.monotonic()
    slot.update(t0)
    slot.update(t0 + 10.5)  # the first retry: still missing
    assert stats.counters["model_retries"] == 1
    settle(slot, ("dropped",), now=t0 + 10.5)
    time.sleep(0.2)  # the loader thread finds nothing and posts nothing
    slot.update(t0 + 10.6)
    slot.update(t0 + 29.0)  # the delay doubled to 20 s: not yet
    assert stats.counters["model_retries"] == 1
    make_model_folder(later, size=32, chain="edges", name="later")
    slot.update(t0 + 31.0)
    assert stats.counters["model_retries"] == 2
    assert settle(slot, ("playing",), now=t0 + 31.0) == "playing"
    assert slot.model is not None and slot.model.name == "later"
    assert store.target("pre/canny_low") == 12.0, "the show file's value wins over the card's, as at start"
