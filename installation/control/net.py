"""This machine on the network, said once: which host strings mean every interface or this machine only,
the address other machines reach it on, its interfaces, a port another program holds, and `BindRetry`, the
one way a listening port is retried (the OSC server's thread and the web's loop both keep one per port)."""

from __future__ import annotations

import fcntl
import logging
import socket
import struct

WILDCARDS = ("", "0.0.0.0", "::")  # listening on every interface
PORT_TAKEN = (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows


def is_wildcard(host: str) -> bool:
    return host in WILDCARDS


def is_loopback(host: str) -> bool:
    """This machine only: nothing another machine can reach (and nothing zeroconf may announce)."""
    return host.startswith("127.") or host in ("localhost", "::1")


def primary_ip() -> str:
    """The address other machines reach us on (no packet is sent: connect() on UDP only picks a route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def reachable_host(host: str) -> str:
    """The address to tell others for a show listening on `host`: the primary address for a wildcard."""
    return primary_ip() if is_wildcard(host) else host


def interface_addresses() -> list[tuple[str, str]]:
    """(interface, IPv4 address) pairs of this machine: what listening on 0.0.0.0 exposes."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:  # SIOCGIFADDR: the standard library has no other way to an interface's address
                data = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on it
            out.append((name, socket.inet_ntoa(data[20:24])))
    return out


def port_taken(e: OSError) -> bool:
    return e.errno in PORT_TAKEN


class BindRetry:
    """One listening port's attempts: while it can't be bound the reason is kept for the HUD (`error`) and
    logged once, because exiting would loop a black screen under a restarting service; binding after
    failures is logged too."""

    def __init__(self, what: str, port: int, retry_s: float, log: logging.Logger) -> None:
        self.what = what
        self.port = port
        self.retry_s = retry_s
        self.log = log
        self.error = ""
        self.attempts = 0

    def failed(self, e: OSError) -> None:
        self.attempts += 1
        first = not self.error
        if port_taken(e):
            self.error = (f"{self.what} port {self.port} is taken by another program "
                          f"(another show running?); retrying every {self.retry_s:g} s")
        else:
            self.error = f"{self.what} port {self.port}: {e.strerror or e}; retrying every {self.retry_s:g} s"
        if first:
            self.log.error("%s", self.error)

    def bound(self, port: int) -> None:
        self.attempts += 1
        self.port = port
        if self.error:
            self.log.info("%s listening on port %d at last (after %d attempts)", self.what, port, self.attempts)
        self.error = ""


def machine_addresses() -> set[str]:
    """Every address of this machine's interfaces, IPv6 included (ifaddr, as zeroconf reads them)."""
    import ifaddr

    out = {"::1"}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            out.add(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return out
