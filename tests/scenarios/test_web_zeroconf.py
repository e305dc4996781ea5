"""Zeroconf as a controller on the network sees it: the real command listening on every interface is
browsable as `_oscjson._tcp` and `_osc._udp` with its ports, through python-zeroconf's own browser; with
OSC over UDP off, OSCQuery is still announced and `_osc._udp` is not."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from installation.control.web.advertise import OSC_UDP, OSCJSON, instance_name
from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import free_tcp_port, free_udp_port, start_cli, wait_presenting


def _multicast() -> str:
    """Why this machine can't do mDNS, or "" when it can (a route for 224.0.0.251 on an interface)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            s.sendto(b"", ("224.0.0.251", 5353))
        return ""
    except OSError as e:
        return f"no multicast here ({e.strerror or e})"


def _browse(tmp_path: Path, show_name: str, osc_table: str, web: int,
            settle_s: float) -> tuple[dict[str, int], str, str]:
    """Play a show and browse both services: (service type -> port seen, why no multicast or "", stderr).
    Browsing goes on `settle_s` after the first service is seen, so one that should not come has its chance."""
    show = small_show(tmp_path, name=show_name, source=SYNTHETIC + "\nfps = 30", osc=osc_table,
                      tail=f"[web]\nport = {web}")
    why = _multicast()
    zc = Zeroconf(ip_version=IPVersion.V4Only, **({"interfaces": ["127.0.0.1"]} if why else {}))
    found: dict[str, int] = {}

    def seen(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added and name.startswith(instance_name(show_name)):
            info = zeroconf.get_service_info(service_type, name, timeout=2000)
            if info is not None:
                found[service_type] = info.port

    proc = start_cli(["rehearse", show, "--headless", "--seconds", 30], tmp_path)
    try:
        wait_presenting(tmp_path, show, proc)
        browsers = [ServiceBrowser(zc, kind, handlers=[seen]) for kind in (OSCJSON, OSC_UDP)]
        t_end = time.monotonic() + 10
        while len(found) < 2 and time.monotonic() < t_end:
            if found:
                t_end = min(t_end, time.monotonic() + settle_s)
            time.sleep(0.1)
        for b in browsers:
            b.cancel()
    finally:
        zc.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    return found, why, err


def _advertised_line(err: str) -> str:
    return next((ln for ln in err.splitlines() if "zeroconf: advertised" in ln), "")


def test_the_show_is_browsable_over_zeroconf(tmp_path: Path) -> None:
    osc, query, web = free_udp_port(), free_tcp_port(), free_tcp_port()
    found, why, err = _browse(tmp_path, "zc-show", f'host = "0.0.0.0"\nport = {osc}\noscquery_port = {query}', web,
                              settle_s=10)
    if why:  # registered through the library's API all the same, or said why not: never silent
        print(why)
        assert "zeroconf: advertised" in err or "zeroconf: can't advertise" in err, err[-2000:]
        return
    assert found == {OSCJSON: query, OSC_UDP: osc}, (found, err[-2000:])
    assert "zeroconf: advertised" in err


def test_with_udp_off_oscquery_is_announced_and_osc_over_udp_is_not(tmp_path: Path) -> None:
    query, web = free_tcp_port(), free_tcp_port()
    found, why, err = _browse(tmp_path, "zc-noudp", f'host = "0.0.0.0"\nudp = false\noscquery_port = {query}', web,
                              settle_s=3)
    line = _advertised_line(err)
    if why:
        print(why)
        if line:  # registered through the library's API: OSCQuery's port only
            assert f"_oscjson._tcp.local. port {query}" in line and "_osc._udp" not in line, line
        else:
            assert "zeroconf: can't advertise" in err, err[-2000:]
        return
    assert found == {OSCJSON: query}, (found, err[-2000:])
    assert "_osc._udp" not in line, line
