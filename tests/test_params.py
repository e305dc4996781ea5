"""The parameter registry: coercion, clamping, snapshots, smoothing."""

from __future__ import annotations

import math

import pytest

from installation.app import default_registry
from installation.core.params import Param, ParamError, ParamStore, Registry, Snapshot


def test_every_declared_default_is_in_range_and_described():
    reg = default_registry()
    assert len(reg) > 40
    for name, p in reg.items():
        assert p.description, f"{name} has no description"
        if p.kind != "trigger":
            assert p.coerce(p.default) == p.default, name


def test_numbers_are_coerced_and_clamped():
    p = Param("pre/blur", "float", 0.0, 0, 20, description="d")
    assert p.coerce(99) == 20.0 and p.coerce(-3) == 0.0 and p.coerce("2.5") == 2.5
    assert p.coerce([3]) == 3.0
    i = Param("pre/median", "int", 0, 0, 15, description="d")
    assert i.coerce(3.6) == 4 and isinstance(i.coerce(3.6), int)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "x", None, [1, 2], {"a": 1}, b"\x00"])
def test_bad_numbers_are_refused(bad):
    with pytest.raises(ParamError):
        Param("pre/blur", "float", 0.0, 0, 20, description="d").coerce(bad)


def test_choices_take_name_or_index_and_refuse_others():
    p = Param("mix/mode", "choice", "a", choices=("a", "b", "c"), description="d")
    assert p.coerce("b") == "b" and p.coerce(2) == "c" and p.coerce(1.0) == "b" and p.coerce("1") == "b"
    for bad in ("z", 3, -1):
        with pytest.raises(ParamError):
            p.coerce(bad)


def test_bools_and_triggers():
    b = Param("hud/show", "bool", False, description="d")
    assert b.coerce(1) is True and b.coerce(0.0) is False and b.coerce("on") is True
    t = Param("seg/relearn", "trigger", description="d")
    assert t.coerce(1) is True and t.coerce(0) is False


def test_declaring_twice_is_an_error():
    with pytest.raises(ValueError):
        Registry([Param("a/b", "bool", False, description="d"), Param("a/b", "bool", True, description="d")])


def test_snapshot_is_immutable_and_does_not_change_under_a_frame():
    store = ParamStore(default_registry())
    snap = store.publish()
    store.set("pre/blur", 5.0, ramp_s=0)
    assert snap["pre/blur"] == 0.0, "a published snapshot never changes"
    with pytest.raises(TypeError):
        snap["pre/blur"] = 1.0  # type: ignore[index]
    assert isinstance(snap, Snapshot)
    assert store.publish()["pre/blur"] == 5.0


def test_smoothing_glides_and_listeners_hear_the_target_at_once():
    now = [0.0]
    reg = Registry([Param("mix/amount", "float", 0.0, 0, 1, smoothing_s=1.0, description="d")])
    store = ParamStore(reg, clock=lambda: now[0])
    heard = []
    store.subscribe(lambda p, v, src: heard.append((p.name, v, src)))
    store.set("mix/amount", 1.0, source="osc")
    assert heard == [("mix/amount", 1.0, "osc")]
    now[0] = 0.5
    assert store.publish()["mix/amount"] == pytest.approx(0.5)
    now[0] = 2.0
    assert store.publish()["mix/amount"] == 1.0


def test_setting_the_same_value_does_not_notify_again():
    store = ParamStore(default_registry())
    heard = []
    store.subscribe(lambda p, v, src: heard.append(v))
    store.set("pre/blur", 3.0)
    store.set("pre/blur", 3.0)
    assert heard == [3.0]


def test_triggers_queue_until_drained():
    store = ParamStore(default_registry())
    store.set("seg/relearn", 1)
    store.set("seg/relearn", 0)  # the button's release is ignored
    assert store.drain_triggers() == [("seg/relearn", 1)]
    assert store.drain_triggers() == []


def test_unknown_parameter():
    with pytest.raises(ParamError):
        ParamStore(default_registry()).set("pre/nope", 1)
