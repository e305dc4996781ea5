"""The web's Host and Origin rules and its connection limits, on the values browsers send (the hostile-web
scenarios run them against the real show)."""

from __future__ import annotations

import socket

import pytest

from installation.control.web.guard import RESERVE, TOTAL, Rules, limit_total, origin_key, split_host


@pytest.mark.parametrize(("host", "parts"), [
    ("10.0.0.5:9080", ("10.0.0.5", 9080)), ("Studio.LOCAL.", ("studio.local", None)),
    ("[::1]:9002", ("::1", 9002)), ("[fe80::1]", ("fe80::1", None)), ("::1", ("::1", None)),
    ("evil.example:x", ("evil.example", None)),
])
def test_split_host(host: str, parts: tuple[str, int | None]) -> None:
    assert split_host(host) == parts


def test_origin_key_fills_the_default_port_and_refuses_what_is_no_origin() -> None:
    assert origin_key("http://10.0.0.5") == ("http", "10.0.0.5", 80)
    assert origin_key("https://Panel.Lan") == ("https", "panel.lan", 443)
    assert origin_key("http://[::1]:9080") == ("http", "::1", 9080)
    assert origin_key("null") is None and origin_key("file:///tmp/x.html") is None


def test_hosts_this_machine_answers_to() -> None:
    rules = Rules("0.0.0.0", ["http://panel.example:8000"], lambda: [9080, 9002])
    for host in ("127.0.0.1:9080", "127.0.0.7", "[::1]:9002", "localhost:9080", "LOCALHOST", "app.localhost",
                 socket.gethostname(), f"{socket.gethostname().split('.')[0]}.local:9080", "panel.example", None):
        assert rules.host_ok(host), host
    for host in ("evil.example:9080", "127.0.0.1.evil.example", "192.0.2.200", "localhost.evil.example"):
        assert not rules.host_ok(host), host


def test_origins_that_may_steer() -> None:
    rules = Rules("127.0.0.1", ["http://panel.example:8000"], lambda: [9080, 9002])
    for origin in ("http://127.0.0.1:9080", "http://localhost:9002", "http://panel.example:8000", None):
        assert rules.origin_ok(origin), origin
    for origin in ("http://evil.example", "http://127.0.0.1:8000", "https://127.0.0.1:9080", "null",
                   "http://evil.example:9080", "http://panel.example:8001"):
        assert not rules.origin_ok(origin), origin


def test_the_total_follows_the_open_file_limit() -> None:
    assert limit_total(1 << 20) == TOTAL
    assert limit_total(256) == (256 - 2 * RESERVE) // 2
    assert limit_total(100) == 8
