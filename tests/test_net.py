"""control/net.py: this machine on the network, and the one retrying bind, against real sockets on loopback."""

from __future__ import annotations

import logging
import socket
import socketserver
import time

import pytest

from installation.control.net import (
    BindRetry,
    interface_addresses,
    is_loopback,
    is_wildcard,
    machine_addresses,
    port_taken,
    reachable_host,
)
from installation.control.osc.server import RetryingServer


def test_the_words_for_every_interface_and_this_machine_only() -> None:
    assert all(map(is_wildcard, ("", "0.0.0.0", "::"))) and not is_wildcard("127.0.0.1")
    assert all(map(is_loopback, ("127.0.0.1", "127.3.2.1", "localhost", "::1")))
    assert not is_loopback("10.0.0.5") and not is_loopback("0.0.0.0")
    assert reachable_host("10.0.0.5") == "10.0.0.5"
    primary = reachable_host("0.0.0.0")  # the address a route out leaves from, or loopback where none is
    assert primary != "0.0.0.0" and primary in machine_addresses()


def test_the_interfaces_include_loopback() -> None:
    assert ("lo", "127.0.0.1") in interface_addresses()
    assert {"127.0.0.1", "::1"} <= machine_addresses()


def _held_udp_port() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_a_port_another_program_holds_is_said_once_and_retried_until_it_is_free(
        caplog: pytest.LogCaptureFixture) -> None:
    holder = _held_udp_port()
    port = holder.getsockname()[1]
    with pytest.raises(OSError) as taken:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.1", port))
    assert port_taken(taken.value)

    def make() -> socketserver.UDPServer:
        return socketserver.UDPServer(("127.0.0.1", port), socketserver.BaseRequestHandler)

    caplog.set_level(logging.INFO, logger="installation.osc")
    server = RetryingServer("test", port, make, retry_s=0.1)
    try:
        assert not server.listening
        assert server.error == (f"test port {port} is taken by another program (another show running?); "
                                "retrying every 0.1 s")
        time.sleep(0.35)  # a few retries: still one line
        holder.close()
        t_end = time.monotonic() + 5
        while not server.listening and time.monotonic() < t_end:
            time.sleep(0.05)
        assert server.listening and server.error == "" and server.port == port
        said = [r.getMessage() for r in caplog.records if r.name == "installation.osc"]
        assert said[0].startswith(f"test port {port} is taken") and len(said) == 2, said
        assert said[1].startswith(f"test listening on port {port} at last (after "), said
    finally:
        server.close()
        holder.close()


def test_bind_retry_keeps_the_reason_logs_the_first_failure_and_the_recovery(
        caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("installation.test")
    caplog.set_level(logging.INFO, logger="installation.test")
    bind = BindRetry("web", 8123, 2.0, log)
    for _ in range(3):
        bind.failed(OSError(98, "Address already in use"))
    bind.failed(OSError(13, "Permission denied"))
    assert bind.error == "web port 8123: Permission denied; retrying every 2 s"
    bind.bound(8123)
    assert bind.error == "" and bind.attempts == 5
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["web port 8123 is taken by another program (another show running?); retrying every 2 s",
                     "web listening on port 8123 at last (after 5 attempts)"], lines
