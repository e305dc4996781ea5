"""[web] in a show file and --web-port: mistakes name the file, the key and what was expected (exit 2, no
traceback); `check` lists the panel's port with the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import small_show
from tests.scenarios.conftest import run_cli


@pytest.mark.parametrize(("web", "said"), [
    ("port = 70000", "web.port"),
    ('port = "x"', "web.port"),
    ('token = "a b"', "web.token: a token is 8 to 128 letters"),
    ("thumbnail = 3", "web.thumbnail"),
    ("colour = 1", "web.colour"),
    ('origins = ["10.0.0.5:8000"]', "web.origins: '10.0.0.5:8000' is not an origin like"),
    ('origins = ["http://10.0.0.5:99999"]', "is not an origin like"),
    ('origins = ["http://10.0.0.5:8000/panel"]', "no path"),
    ('origins = "http://10.0.0.5:8000"', "web.origins"),
])
def test_web_mistakes_name_file_key_and_expectation(tmp_path: Path, web: str, said: str) -> None:
    show = small_show(tmp_path, osc="", tail=f"[web]\n{web}")
    res = run_cli(["check", show], tmp_path)
    assert res.returncode == 2 and said in res.stderr and str(show) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_web_port_flag_and_check(tmp_path: Path) -> None:
    show = small_show(tmp_path, osc='host = "0.0.0.0"', tail='[web]\nport = 9191\ntoken = "backstage-pass"\n'
                                                           'origins = ["http://10.0.0.5:8000", "https://panel.lan"]')
    res = run_cli(["rehearse", show, "--headless", "--frames", "1", "--web-port", "70000"], tmp_path)
    assert res.returncode == 2 and "--web-port 70000" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(["check", show], tmp_path)
    assert "web (panel, status page): HTTP 0.0.0.0:9191" in res.stdout + res.stderr
    assert "changing values needs [web] token" in res.stdout + res.stderr
