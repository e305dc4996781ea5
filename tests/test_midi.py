"""MIDI in: bindings, scaling to each parameter's range, 14-bit controllers, notes, learn, bad show files.

This machine has no ALSA sequencer (/dev/snd/seq), so no MIDI port can open here: real mido messages are
fed through MidiControl.feed, the entry point the port's callback calls, into a real Show (headless EGL,
synthetic source), and the values are read back from its store, its snapshot and its recorded picture.
The test that opens a real virtual ALSA port runs only where /dev/snd/seq exists.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import mido
import pytest

from installation.app import RunOptions, Show, default_registry, load_show
from installation.control.midi.control import Binding, MidiControl, parse_binding
from installation.control.midi.ports import pick_port
from tests.conftest import frames_of

INSTALLATION = str(Path(sys.executable).parent / "installation")

SHOW = """
name = "miditest"
[source]
kind = "synthetic"
width = 160
height = 96
[render]
width = 160
height = 96
content_size = 64
[osc]
enabled = false
[params]
"pre/flip" = false
[midi]
port = "any"
[midi.map]
{mapping}
"""

MAPPING = """
"cc 1 7" = "mix/amount"
"cc 1 8" = "display/fit"
"cc 1 9" = "display/mirror_x"
"cc 1 10" = "show/grab"
"cc14 1 1" = "colour/brightness"
"note 1 36" = "show/blackout"
"note 2 40" = "preset/next"
"pb 3" = "colour/contrast"
"""


def write_show(tmp: Path, mapping: str = MAPPING) -> Path:
    path = tmp / "miditest.toml"
    path.write_text(SHOW.format(mapping=mapping))
    return path


def build(tmp: Path, state: Path | None = None, **opts: object) -> Show:
    registry = default_registry()
    cfg = load_show(write_show(tmp) if not (tmp / "miditest.toml").exists() else tmp / "miditest.toml", registry)
    return Show(cfg, RunOptions(headless=True, state=state or tmp / "state", **opts), registry).build()  # type: ignore[arg-type]


def midi_of(show: Show) -> MidiControl:
    return next(c for c in show.surfaces if isinstance(c, MidiControl))


def cc(ch: int, n: int, v: int) -> mido.Message:
    return mido.Message("control_change", channel=ch - 1, control=n, value=v)


def drain(show: Show) -> None:
    """What Show.update() does with the inbox: the jobs the MIDI thread handed over, on this thread."""
    while not show.inbox.empty():
        show.inbox.get_nowait()(show)


@pytest.fixture
def show(tmp_path: Path):
    s = build(tmp_path)
    yield s
    s.close()


def test_cc_values_are_scaled_to_each_parameters_range(show: Show) -> None:
    m = midi_of(show)
    for msg in (cc(1, 7, 64), cc(1, 8, 127), cc(1, 9, 100)):
        m.feed(msg)
    show.update()
    assert show.store.target("mix/amount") == pytest.approx(64 / 127)
    assert show.store.target("display/fit") == "stretch"  # the last of three choices
    assert show.store.target("display/mirror_x") is True
    m.feed(cc(1, 8, 60))
    m.feed(cc(1, 9, 10))
    show.update()
    assert show.store.target("display/fit") == "fill"
    assert show.store.target("display/mirror_x") is False
    m.feed(cc(1, 7, 0))
    show.update()
    show.update()  # mix/amount glides (smoothing); the snapshot follows the store
    assert show.store.target("mix/amount") == 0.0
    assert m.counts["unmapped"] == 0


def test_a_flood_of_one_fader_is_one_job_with_its_newest_value(show: Show) -> None:
    m = midi_of(show)
    for v in range(100):
        m.feed(cc(1, 7, v % 128))
    assert show.inbox.qsize() == 1
    drain(show)
    assert show.store.target("mix/amount") == pytest.approx(99 / 127)
    assert m.counts["coalesced"] == 99 and m.counts["accepted"] == 100
    m.feed(cc(5, 99, 3))  # nothing is bound there: counted, nothing queued
    assert m.counts["unmapped"] == 1 and show.inbox.empty()


def test_14_bit_controllers_resolve_finer_than_7_bits(show: Show) -> None:
    m = midi_of(show)
    m.feed(cc(1, 1, 64))  # high byte: the coarse value at once
    drain(show)
    assert show.store.target("colour/brightness") == pytest.approx((64 << 7) / 16383 * 2)
    m.feed(cc(1, 33, 1))
    drain(show)
    fine1 = show.store.target("colour/brightness")
    m.feed(cc(1, 33, 2))
    drain(show)
    fine2 = show.store.target("colour/brightness")
    assert fine1 == pytest.approx(((64 << 7) | 1) / 16383 * 2)
    assert 0 < fine2 - fine1 < 2 / 127 / 50  # a step fifty times finer than a 7-bit controller's
    m.feed(cc(1, 1, 127))
    m.feed(cc(1, 33, 127))
    drain(show)
    assert show.store.target("colour/brightness") == 2.0


def test_notes_toggle_bools_and_fire_triggers_and_pitch_bend_spans_the_range(show: Show) -> None:
    m = midi_of(show)
    on = mido.Message("note_on", channel=0, note=36, velocity=90)
    off = mido.Message("note_off", channel=0, note=36)
    for msg, want in ((on, True), (off, True), (on, False), (off, False), (on, True)):
        m.feed(msg)
        drain(show)
        assert show.store.target("show/blackout") is want
    m.feed(mido.Message("note_on", channel=1, note=40, velocity=1))
    m.feed(mido.Message("note_on", channel=1, note=40, velocity=0))  # note on at 0 is a note off
    drain(show)
    assert show.store.drain_triggers() == [("preset/next", 1)]
    for v in (0, 100, 127, 20, 90):  # a controller fires a trigger on each crossing of 64 upwards
        m.feed(cc(1, 10, v))
    drain(show)
    assert show.store.drain_triggers() == [("show/grab", 1), ("show/grab", 1)]
    m.feed(mido.Message("pitchwheel", channel=2, pitch=-8192))
    drain(show)
    assert show.store.target("colour/contrast") == 0.0
    m.feed(mido.Message("pitchwheel", channel=2, pitch=8191))
    drain(show)
    assert show.store.target("colour/contrast") == 3.0


def test_learn_binds_the_next_moved_control_and_saves_it_in_the_state_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    show = build(tmp_path, state)
    try:
        m = midi_of(show)
        show.store.set("midi/learn", "/mix/feedback", source="osc")  # as an OSC /midi/learn message sets it
        assert any("learn" in line for line in m.hud(show.handle))
        m.feed(cc(2, 21, 127))  # the control moved: bound, and its value taken at once
        drain(show)
        assert show.store.target("mix/feedback") == pytest.approx(0.98)
        assert show.store.target("midi/learn") == ""
        m.feed(cc(2, 21, 0))
        drain(show)
        assert show.store.target("mix/feedback") == 0.0
        # a fader that sends a high byte and then its low byte (N+32) is learned as 14-bit
        show.store.set("midi/learn", "colour/saturation", source="osc")
        m.feed(cc(4, 5, 64))
        m.feed(cc(4, 37, 64))
        drain(show)
        assert show.store.target("colour/saturation") == pytest.approx(((64 << 7) | 64) / 16383 * 3)
        # a name that is no parameter: refused, nothing bound, learning over
        show.store.set("midi/learn", "no/such", source="osc")
        m.feed(cc(9, 9, 9))
        drain(show)
        assert m.counts["rejected"] == 1 and "no/such" not in m.bindings.values()
        assert show.store.target("midi/learn") == ""
    finally:
        show.close()
    saved = json.loads((state / "midi.json").read_text())
    assert saved == {"cc 2 21": "mix/feedback", "cc14 4 5": "colour/saturation"}
    again = build(tmp_path, state)  # after a restart the learned bindings are there
    try:
        m = midi_of(again)
        m.feed(cc(2, 21, 127))
        m.feed(cc(4, 5, 0))
        m.feed(cc(4, 37, 0))
        drain(again)
        assert again.store.target("mix/feedback") == pytest.approx(0.98)
        assert again.store.target("colour/saturation") == 0.0
    finally:
        again.close()


def test_a_controller_moved_during_the_show_changes_the_recorded_picture(tmp_path: Path) -> None:
    """The show-level path: the MIDI callback thread -> inbox -> update() -> snapshot -> the picture."""
    out = tmp_path / "out.mp4"
    show = build(tmp_path, frames=40, record=out, realtime=True)
    m = midi_of(show)

    def play() -> None:  # the port's thread: a pad pressed once the show has shown ten frames
        while show.stats.counters["frames_presented"] < 10:
            time.sleep(0.01)
        m.feed(mido.Message("note_on", channel=0, note=36, velocity=127))

    t = threading.Thread(target=play)
    t.start()
    show.run()
    t.join()
    frames = frames_of(out)
    assert len(frames) >= 30
    assert frames[2].mean() > 40  # the synthetic room
    assert frames[-1].max() < 8  # blackout, from the pad
    assert m.summary()["accepted"] == 1 and show.stats.counters["midi_values"] == 1


def test_port_names_by_name_part_or_any() -> None:
    names = ["Midi Through:Midi Through Port-0 14:0", "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"]
    assert pick_port("any", names) == names[1]
    assert pick_port("nanokontrol", names) == names[1]
    assert pick_port(names[0], names) == names[0]
    assert pick_port("APC40", names) is None
    assert pick_port("any", names[:1]) is None


def test_with_no_midi_on_the_machine_the_show_plays_and_says_why(show: Show) -> None:
    m = midi_of(show)
    deadline = time.monotonic() + 3
    while not (m.port_name or m.port_error) and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path("/dev/snd/seq").exists():
        pytest.skip("this machine has an ALSA sequencer")
    assert "ALSA sequencer" in m.port_error
    assert any("no port" in line for line in m.hud(show.handle))


@pytest.mark.skipif(not Path("/dev/snd/seq").exists(), reason="no ALSA sequencer (/dev/snd/seq) here")
def test_a_virtual_port_plugged_in_after_the_start_is_picked_up(tmp_path: Path) -> None:
    text = SHOW.format(mapping=MAPPING).replace('port = "any"', 'port = "installation-test"\npoll_s = 0.2')
    (tmp_path / "miditest.toml").write_text(text)
    show = build(tmp_path)
    try:
        m = midi_of(show)
        port = mido.open_output("installation-test", virtual=True)
        deadline = time.monotonic() + 5
        while not m.port_name and time.monotonic() < deadline:
            time.sleep(0.05)
        port.send(cc(1, 7, 127))
        deadline = time.monotonic() + 2
        while show.store.target("mix/amount") != 1.0 and time.monotonic() < deadline:
            show.update()
            time.sleep(0.02)
        assert show.store.target("mix/amount") == 1.0
        port.close()
    finally:
        show.close()


@pytest.mark.parametrize("mapping, key, expected", [
    ('"cc 1 7" = "mix/nonsense"', 'midi.map."cc 1 7"', "a registered parameter"),
    ('"cc 1 128" = "mix/amount"', 'midi.map."cc 1 128"', "a controller number 0..127, got 128"),
    ('"cc 17 1" = "mix/amount"', 'midi.map."cc 17 1"', "a MIDI channel 1..16, got 17"),
    ('"cc14 1 40" = "mix/amount"', 'midi.map."cc14 1 40"', "0..31"),
    ('"fader 1" = "mix/amount"', 'midi.map."fader 1"', "'cc CH N'"),
    ('"cc 1 7" = "model/select"', 'midi.map."cc 1 7"', "a number, bool, choice or trigger"),
])
def test_bad_mappings_are_reported_by_check_with_file_key_and_expectation(
        tmp_path: Path, mapping: str, key: str, expected: str) -> None:
    path = write_show(tmp_path, mapping)
    r = subprocess.run([INSTALLATION, "check", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(path) in r.stderr and key in r.stderr and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_check_lists_midi_ports(tmp_path: Path) -> None:
    r = subprocess.run([INSTALLATION, "check", str(write_show(tmp_path))], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("midi ports:"))
    if not Path("/dev/snd/seq").exists():
        assert "ALSA sequencer" in line, line


def test_binding_grammar() -> None:
    assert parse_binding("CC 16 127").key == "cc 16 127"
    assert parse_binding(" pb 2 ").key == "pb 2"
    assert parse_binding("cc14 1 31").full_scale == 16383
    with pytest.raises(ValueError, match="no number"):
        parse_binding("pb 1 3")
    assert parse_binding("note 1 0") == Binding("note", 1, 0)
