"""control/access.py: one parser for senders and feedback targets, used by the command line, the running
show and the show file's [osc] checker alike."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from installation.app import load_show
from installation.control.access import parse_allow, parse_target
from installation.core.errors import UserError


def test_targets_and_senders_parse_one_way() -> None:
    assert parse_target("studio.local:9001") == ("studio.local", 9001)
    assert parse_target(" 10.0.0.5 ") == ("10.0.0.5", 9001)  # the feedback port where none is named
    assert parse_target("[::1]:7000") == ("::1", 7000)
    for bad in ("host:", ":9001", "host:0", "host:70000", "host:port"):
        with pytest.raises(UserError, match="HOST:PORT"):
            parse_target(bad)
    with pytest.raises(UserError, match="HOST:PORT"):
        parse_target("nohost", default_port=None)  # a show file names the port
    assert parse_allow(["any", "10.0.0.1"]) is None
    assert parse_allow(["10.0.0.0/24"]) == [ipaddress.ip_network("10.0.0.0/24")]
    assert ipaddress.ip_network("192.168.0.0/16") in (parse_allow([]) or [])
    with pytest.raises(UserError, match=r"a network like 10\.0\.0\.0/24"):
        parse_allow(["10.0.0.300"])


@pytest.mark.parametrize(("table", "key", "said"), [
    ('feedback = ["nohost"]', "osc.feedback", "'nohost' is not HOST:PORT (expected HOST:PORT, e.g."),
    ('feedback = ["10.0.0.5:99999"]', "osc.feedback", "'10.0.0.5:99999' is not HOST:PORT"),
    ('allow = ["10.0.0.0/33"]', "osc.allow", "'10.0.0.0/33' is not an IP address, a network like 10.0.0.0/24"),
])
def test_the_show_files_osc_section_is_read_by_the_same_parser(tmp_path: Path, table: str, key: str,
                                                                 said: str) -> None:
    show = tmp_path / "s.toml"
    show.write_text(f'[source]\nkind = "synthetic"\n[osc]\n{table}\n')
    with pytest.raises(UserError) as e:
        load_show(show)
    assert f"{show}: {key}: " in str(e.value) and said in str(e.value), str(e.value)


def test_a_good_osc_section_loads_as_written(tmp_path: Path) -> None:
    show = tmp_path / "s.toml"
    show.write_text('[source]\nkind = "synthetic"\n[osc]\nfeedback = ["studio.local:9001"]\n'
                    'allow = ["10.0.0.0/24", "any"]\n')
    cfg = load_show(show)
    assert cfg.osc.feedback == ["studio.local:9001"] and cfg.osc.allow == ["10.0.0.0/24", "any"]
