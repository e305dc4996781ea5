"""Presets (save, recall with a morph, next/prev, keys) and the state folder (live values kept across a
restart, corrupt files set aside), against a real headless Show over real UDP."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest
from pythonosc.udp_client import SimpleUDPClient
from test_osc import assert_in_range, control, make_show, pump_until, step

from installation.control.presets import PresetBank
from installation.core.files import atomic_write
from installation.core.state import LIVE_FILE, LiveState, read_json, state_dir


def _client(show) -> SimpleUDPClient:  # type: ignore[no-untyped-def]
    return SimpleUDPClient("127.0.0.1", control(show).port)


def _pyglet_keys():  # type: ignore[no-untyped-def]
    """pyglet.window.key without importing pyglet.window, which needs a display."""
    import importlib.util

    import pyglet

    spec = importlib.util.spec_from_file_location("pyglet_keys", Path(pyglet.__file__).parent / "window" / "key.py")
    assert spec is not None and spec.loader is not None
    keys = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(keys)
    return keys


def _bank(show) -> PresetBank:  # type: ignore[no-untyped-def]
    return next(c for c in show.surfaces if isinstance(c, PresetBank))


def test_save_and_recall_with_a_morph_through_intermediate_values(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    try:
        osc = _client(show)
        t = show.store.target
        presets = tmp_path / "state" / "presets"
        osc.send_message("/colour/brightness", 0.5)
        osc.send_message("/pre/blur", 2.0)
        osc.send_message("/pre/median", 3)
        osc.send_message("/mix/mode", "person")
        assert pump_until(show, lambda: t("mix/mode") == "person")
        osc.send_message("/preset/save", 1)
        assert pump_until(show, lambda: (presets / "preset-01.json").exists())
        saved = json.loads((presets / "preset-01.json").read_text())["values"]
        assert saved["colour/brightness"] == 0.5 and saved["pre/median"] == 3
        assert not any(k.startswith(("display/", "hud/", "preset/")) for k in saved)  # calibration stays put
        assert "show/blackout" not in saved and "model/select" not in saved  # persist=False: not a look

        osc.send_message("/colour/brightness", 1.75)
        osc.send_message("/pre/blur", 12.0)
        osc.send_message("/pre/median", 9)
        osc.send_message("/mix/mode", "camera")
        osc.send_message("/display/gamma", 2.5)
        osc.send_message("/preset/morph_s", 0.5)
        assert pump_until(show, lambda: t("preset/morph_s") == 0.5)
        pump_until(show, lambda: show.store.get("colour/brightness") == 1.75 and show.store.get("pre/blur") == 12.0)

        osc.send_message("/preset/recall", 1)
        assert pump_until(show, lambda: t("colour/brightness") == 0.5)
        # the targets jump, ints and choices switch at once, floats glide
        assert t("pre/median") == 3 and show.snapshot["pre/median"] == 3
        assert t("mix/mode") == "person"
        trail = []
        assert pump_until(show, lambda: (trail.append((show.snapshot["colour/brightness"], show.snapshot["pre/blur"])),
                                         trail[-1] == (0.5, 2.0))[1], timeout=5.0)
        between = [(b, bl) for b, bl in trail if 0.5 < b < 1.75 and 2.0 < bl < 12.0]
        assert len(between) >= 2, trail  # it passed through intermediate values, on both
        assert all(b >= c for (b, _), (c, _) in itertools.pairwise(trail))  # monotonic, no overshoot
        assert t("display/gamma") == 2.5  # not in presets
        assert_in_range(show)
    finally:
        show.close()


def test_next_prev_keys_and_bad_slots(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    try:
        osc = _client(show)
        bank = _bank(show)
        t = show.store.target
        osc.send_message("/preset/morph_s", 0.0)
        for slot, blur in ((2, 2.0), (5, 5.0), (9, 9.0)):
            osc.send_message("/pre/blur", blur)
            osc.send_message("/preset/save", slot)
            assert pump_until(show, lambda s=slot: bank.current == s)
        assert bank.slots() == [2, 5, 9]
        osc.send_message("/preset/next", 1)  # from 9: wraps to 2
        assert pump_until(show, lambda: bank.current == 2 and t("pre/blur") == 2.0)
        osc.send_message("/preset/next", [])  # a bare message fires too
        assert pump_until(show, lambda: bank.current == 5 and t("pre/blur") == 5.0)
        osc.send_message("/preset/prev", 1.0)
        osc.send_message("/preset/prev", 0.0)  # the release: nothing
        assert pump_until(show, lambda: bank.current == 2)
        step(show, 3)
        assert bank.current == 2

        key = _pyglet_keys()
        bank.on_key(show.handle, key.LEFT, 0)  # from 2: wraps to 9 (Show.on_key hands keys to its controls)
        assert pump_until(show, lambda: bank.current == 9 and t("pre/blur") == 9.0)
        bank.on_key(show.handle, key.RIGHT, 0)
        assert pump_until(show, lambda: bank.current == 2)

        c = control(show)
        osc.send_message("/preset/recall", 150)  # no such slot: rejected at the door
        osc.send_message("/preset/recall", 2.5)
        osc.send_message("/preset/save", -3)
        osc.send_message("/preset/recall", "x")
        assert pump_until(show, lambda: c.counters.reasons["bad value"] == 4)
        osc.send_message("/preset/recall", 7)  # a valid slot with nothing in it: said, not fatal
        assert pump_until(show, lambda: bank.last_message == "preset 7 is empty")
        assert bank.current == 2 and t("pre/blur") == 2.0
        assert any("preset 2" in line for line in show.hud_text())
    finally:
        show.close()


def test_presets_without_a_state_folder_live_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTALLATION_STATE_DIR", "")
    show = make_show(tmp_path, state=None)
    try:
        assert _bank(show).folder is None
        osc = _client(show)
        osc.send_message("/pre/blur", 4.0)
        osc.send_message("/preset/save", 3)
        assert pump_until(show, lambda: _bank(show).slots() == [3])
        osc.send_message("/pre/blur", 1.0)
        osc.send_message("/preset/morph_s", 0.0)
        assert pump_until(show, lambda: show.store.target("pre/blur") == 1.0)
        osc.send_message("/preset/recall", 3)
        assert pump_until(show, lambda: show.store.target("pre/blur") == 4.0)
    finally:
        show.close()
    assert not (tmp_path / "state").exists()


# ---- live values across a restart --------------------------------------------------------------------------

def test_live_values_are_restored_after_a_restart(tmp_path: Path) -> None:
    show = make_show(tmp_path, extra="", name="restart")
    try:
        osc = _client(show)
        osc.send_message("/pre/blur", 6.5)
        osc.send_message("/display/tl_x", 0.1)
        osc.send_message("/show/blackout", 1)  # persist=False: a blackout must not survive a restart
        assert pump_until(show, lambda: show.store.target("show/blackout") is True)
    finally:
        show.close()  # a clean stop saves at once
    live = json.loads((tmp_path / "state" / LIVE_FILE).read_text())["values"]
    assert live["pre/blur"] == 6.5 and live["display/tl_x"] == pytest.approx(0.1)
    assert "show/blackout" not in live and "preset/save" not in live

    again = make_show(tmp_path, name="restart")
    try:
        assert again.store.target("pre/blur") == 6.5 and again.snapshot["pre/blur"] == 6.5
        assert again.store.target("display/tl_x") == pytest.approx(0.1)
        assert again.store.target("show/blackout") is False
    finally:
        again.close()

    with_set = make_show(tmp_path, name="restart", extra_params={"pre/blur": 1.5})  # --set wins
    try:
        assert with_set.store.target("pre/blur") == 1.5
        assert with_set.store.target("display/tl_x") == pytest.approx(0.1)
    finally:
        with_set.close()

    fresh = make_show(tmp_path, name="restart", extra="[state]\nrestore = false")
    try:
        assert fresh.store.target("pre/blur") == 0.0
    finally:
        fresh.close()


def test_saves_are_debounced_and_atomic(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    try:
        keeper = next(c for c in show.surfaces if isinstance(c, LiveState))
        keeper.debounce_s = 0.5
        path = tmp_path / "state" / LIVE_FILE
        osc = _client(show)
        for i in range(5):
            osc.send_message("/pre/blur", float(i + 1))
        assert pump_until(show, lambda: show.store.target("pre/blur") == 5.0)
        assert pump_until(show, lambda: path.exists() and json.loads(path.read_text())["values"]["pre/blur"] == 5.0)
        assert keeper.saves == 1  # five changes in a burst, one write
        assert not [p for p in path.parent.iterdir() if ".tmp" in p.name]
    finally:
        show.close()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]",
                                     b'{"values": {"pre/blur": "lots", "pre/nope": 1, "pre/median": 4}}'])
def test_a_corrupt_state_file_is_set_aside_never_fatal(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / LIVE_FILE).write_bytes(content)
    (state / "presets").mkdir()
    (state / "presets" / "preset-03.json").write_bytes(content)
    show = make_show(tmp_path)
    try:
        step(show, 3)
        partial = content.startswith(b'{"values"')
        # a readable file with some bad values: the good ones are used, the bad ones skipped
        assert show.store.target("pre/median") == (4 if partial else 0)
        assert show.store.target("pre/blur") == 0.0
        aside = [p.name for p in state.iterdir() if ".corrupt-" in p.name]
        assert (aside == []) if partial else (len(aside) == 1 and aside[0].startswith(LIVE_FILE))
        osc = _client(show)
        osc.send_message("/preset/recall", 3)
        assert pump_until(show, lambda: _bank(show).last_message.startswith(("preset 3", "recalled preset 3")))
        assert_in_range(show)
    finally:
        show.close()


def test_state_dir_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSTALLATION_STATE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert state_dir("My Show/1") == tmp_path / "home/.local/state/installation/My_Show_1"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir("a") == tmp_path / "xdg/installation/a"
    monkeypatch.setenv("INSTALLATION_STATE_DIR", str(tmp_path / "svc"))
    assert state_dir("a") == tmp_path / "svc/a"
    assert state_dir("a", tmp_path / "exact") == tmp_path / "exact"  # --state: this show's folder itself
    monkeypatch.setenv("INSTALLATION_STATE_DIR", "")
    assert state_dir("a") is None  # state switched off
    assert state_dir("a", tmp_path / "exact") == tmp_path / "exact"


def test_atomic_write_and_read_json(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "x.json"
    atomic_write(p, '{"a": 1}')
    assert read_json(p) == {"a": 1}
    atomic_write(p, '{"a": 2}')
    assert read_json(p) == {"a": 2} and os.listdir(p.parent) == ["x.json"]
    p.write_text("{")
    assert read_json(p) is None and not p.exists()
    assert read_json(tmp_path / "missing.json") is None
