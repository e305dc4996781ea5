"""Malformed show files: each one exits 2 from `check` and from `run`, before any window opens, printing
the file, the key path and what was expected, and never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from installation.cli import main

# (name, show file text, key path the message must name)
CASES = [
    ("unknown_section", '[sorce]\nkind = "camera"\n', "sorce"),
    ("unknown_key", "[source]\nwidht = 1280\n", "source.widht"),
    ("kind_not_a_choice", '[source]\nkind = "webcam"\n', "source.kind"),
    ("width_not_int", '[source]\nwidth = "wide"\n', "source.width"),
    ("width_too_small", "[source]\nwidth = 5\n", "source.width"),
    ("width_float", "[render]\nwidth = 1e9\n", "render.width"),
    ("fps_zero", "[source]\nfps = 0\n", "source.fps"),
    ("fps_huge", "[source]\nfps = 1000\n", "source.fps"),
    ("video_without_file", '[source]\nkind = "video"\n', "source.video"),
    ("section_is_a_string", 'source = "camera"\n', "source"),
    ("content_too_small", "[render]\ncontent_size = 32\n", "render.content_size"),
    ("fullscreen_not_bool", "[render]\nfullscreen = 3\n", "render.fullscreen"),
    ("screen_negative", "[render]\nscreen = -1\n", "render.screen"),
    ("osc_port_too_big", "[osc]\nport = 70000\n", "osc.port"),
    ("osc_feedback_not_host_port", '[osc]\nfeedback = ["nohost"]\n', "osc.feedback"),
    ("osc_allow_not_list", '[osc]\nallow = "everyone"\n', "osc.allow"),
    ("providers_number", "[model]\nproviders = 5\n", "model.providers"),
    ("workers_zero", "[model]\nworkers = 0\n", "model.workers"),
    ("workers_word", '[model]\nworkers = "many"\n', "model.workers"),
    ("workers_too_many", "[model]\nworkers = 99\n", "model.workers"),
    ("name_not_string", "name = 12\n", "name"),
    ("state_restore_not_bool", '[state]\nrestore = "sometimes"\n', "state.restore"),
    ("param_unknown", '[params]\n"pre/nonexistent" = 1\n', "params.pre.nonexistent"),
    ("param_out_of_range", '[params]\n"mix/amount" = 5\n', "params.mix.amount"),
    ("param_bad_choice", '[params]\n"mix/mode" = "sideways"\n', "params.mix.mode"),
    ("param_bad_bool", '[params]\n"show/blackout" = "maybe"\n', "params.show.blackout"),
    ("param_nested_table", "[params.mix]\namount = -1\n", "params.mix.amount"),
    ("schedule_bad_time", '[[schedule.hours]]\nstart = "25:00"\n', "schedule.hours[0].start"),
    ("schedule_bad_day", '[[schedule.hours]]\ndays = "funday"\n', "schedule.hours[0].days"),
    ("schedule_unknown_look", '[[schedule.hours]]\nlook = "party"\n', "schedule.hours[0].look"),
    ("schedule_attract_unknown", '[schedule]\nattract = "zz"\n', "schedule.attract"),
    ("schedule_look_out_of_range", '[schedule.looks.dim]\n"colour/brightness" = 9\n',
     "schedule.looks.dim.colour.brightness"),
    ("schedule_look_unknown_param", '[schedule.looks.dim]\n"nope/x" = 1\n', "schedule.looks.dim.nope.x"),
    ("schedule_negative_delay", "[schedule]\nattract_after_s = -5\n", "schedule.attract_after_s"),
    ("schedule_empty_by", '[schedule]\nempty_by = "sound"\n', "schedule.empty_by"),
    ("health_negative_heartbeat", "[health]\nheartbeat_s = -1\n", "health.heartbeat_s"),
    ("health_unknown_key", "[health]\nwatchdog = 1\n", "health.watchdog"),
]

# Whole-file problems: no key to name, but the file and what was expected.
FILE_CASES = [
    ("toml_syntax", '[source\nkind = "camera"\n'),
    ("not_utf8", b"\xff\xfe\x00garbage\x80"),
]


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize(("name", "text", "key"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["check", "run"])
def test_malformed_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, key: str,
                        command: str) -> None:
    show = tmp_path / f"{name}.toml"
    show.write_text(text)
    argv = ["check", str(show)] if command == "check" else ["run", str(show), "--headless", "--frames", "1"]
    rc, out = run_cli(capsys, argv)
    assert rc == 2, out
    assert "Traceback" not in out
    line = next(ln for ln in out.splitlines() if ln.startswith("error: "))
    assert str(show) in line  # the file
    assert f": {key}: " in line  # the key path
    assert "(expected " in line  # what was expected


@pytest.mark.parametrize(("name", "content"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
@pytest.mark.parametrize("command", ["check", "run"])
def test_unreadable_show(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | bytes,
                         command: str) -> None:
    show = tmp_path / f"{name}.toml"
    show.write_bytes(content.encode() if isinstance(content, str) else content)
    rc, out = run_cli(capsys, [command, str(show)])
    assert rc == 2
    assert "Traceback" not in out
    assert str(show) in out


def test_missing_show_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_cli(capsys, ["check", str(tmp_path / "nowhere.toml")])
    assert rc == 2
    assert "not found" in out and "expected" in out


def test_enough_cases() -> None:
    assert len(CASES) + len(FILE_CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


def test_a_good_show_with_every_reliability_section_is_accepted(tmp_path: Path) -> None:
    """The same sections, written correctly, load: the errors above are about the values, not the tables."""
    from installation.app import load_show

    show = tmp_path / "good.toml"
    show.write_text("""
[source]
kind = "synthetic"
[schedule]
outside = "blackout"
attract = "dim"
attract_after_s = 120
source_lost = "idle"
[[schedule.hours]]
days = "tue-sun"
start = "10:00"
end = "18:00"
[schedule.looks.dim]
"colour/brightness" = 0.4
mix = { feedback = 0.9 }
[health]
heartbeat_s = 2
model_retry_s = 5
""")
    cfg = load_show(show)
    assert cfg.schedule.looks["dim"] == {"colour/brightness": 0.4, "mix/feedback": 0.9}
    assert cfg.schedule.hours[0].days == "tue-sun"
    assert cfg.health.model_retry_s == 5
