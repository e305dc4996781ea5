"""control/options.py: the live-control flags read into the ControlOptions a RunOptions carries, checked
before anything opens (what a show does with them: test_osc.py, from the allow-list to replay)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from installation.app import RunOptions
from installation.control.options import add_run_flags, control_options
from installation.core.errors import UserError
from installation.show.options import ControlOptions


def parse(*argv: str, prog: str = "installation rehearse") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog)
    add_run_flags(p)
    return p.parse_args(list(argv))


def test_no_flags_leave_everything_to_the_show_file() -> None:
    assert control_options(parse()) == ControlOptions()
    assert control_options(argparse.Namespace()) == ControlOptions()  # a parser without the flags
    assert RunOptions().control == ControlOptions()


def test_the_flags_fill_one_frozen_object(tmp_path: Path) -> None:
    rec = tmp_path / "take.jsonl"
    rec.write_text("")
    args = parse("--osc-port", "0", "--osc-host", "127.0.0.1", "--osc-feedback", "127.0.0.1:9101",
                 "--osc-feedback", "127.0.0.2:9102", "--osc-allow", "10.0.0.0/8", "--oscquery-port", "0",
                 "--web-port", "0", "--osc-replay", str(rec), "--osc-record", "--state", str(tmp_path))
    c = control_options(args)
    assert c == ControlOptions(osc=True, osc_host="127.0.0.1", osc_port=0,
                               osc_feedback=("127.0.0.1:9101", "127.0.0.2:9102"), osc_allow=("10.0.0.0/8",),
                               oscquery_port=0, web_port=0, osc_record=True, osc_replay=rec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.osc_port = 9000  # type: ignore[misc]
    assert control_options(parse("--no-osc")).osc is False
    fresh = parse()
    fresh.fresh = True  # `--fresh` is app's flag, read here with the rest
    assert control_options(fresh).fresh is True
    assert parse(prog="installation run").venue and not parse().venue  # RunOptions', not the control's


@pytest.mark.parametrize("argv, said", [
    (("--osc-port", "70000"), "--osc-port 70000"),
    (("--web-port", "-1"), "--web-port -1"),
    (("--osc-feedback", "nohost:notaport"), "nohost:notaport"),
    (("--osc-allow", "not-an-address"), "not-an-address"),
    (("--osc-replay", "/nonexistent/take.jsonl"), "OSC recording not found"),
])
def test_a_bad_flag_is_refused_before_anything_opens(argv: tuple[str, ...], said: str) -> None:
    with pytest.raises(UserError) as e:
        control_options(parse(*argv))
    assert said in str(e.value)

