"""Who may reach the web server, and what a request must carry, on a venue's network (docs/security.md).

At accept, before aiohttp reads a byte (Doorman, the protocol factory the listening sockets are given):
a sender outside the show's allow-list, a sender holding its share already (PER_SENDER, or a quarter of
the total), a connection past the total (TOTAL, or fewer where the process may open few descriptors) and
a connection accepted while descriptors run short (its own number within RESERVE of the open-file limit:
descriptors are handed out lowest first) are closed at once, counted, and the show plays on. The soft
open-file limit is raised to the hard one (at most WANT_FILES) first: systemd's default soft limit is
1024 under a much higher hard one, for programs that need more to ask. A connection that sends no
complete request within KEEPALIVE_S of connecting, or of its last answer, is closed by aiohttp's
keep-alive timer, which also runs while a request is half sent.

On every request (Rules, the servers' middleware): a Host that is not this machine (a name of its, one
of its addresses, loopback, the configured host or one named in [web] origins) is refused, since a page
that rebinds its own name to this machine's address (DNS rebinding) would otherwise read the panel, the
tree and the thumbnail as its own origin. A WebSocket handshake or a write (any method but GET, HEAD,
OPTIONS) that carries an Origin must come from one of the show's own pages (this machine at one of the
server's ports) or a [web] origins entry: a page from elsewhere can't steer the show through a visitor's
browser, nor ride the token's cookie from another port of this host. Clients that are not browsers send
no Origin and are judged by the allow-list and the token alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from installation.control.net import is_wildcard, machine_addresses

log = logging.getLogger("installation.web")

PER_SENDER = 64  # connections one address may hold (a phone's browser uses about 6)
TOTAL = 256  # connections in all, fewer where the open-file limit is low (limit_total)
RESERVE = 64  # descriptors kept for the show itself: files, logs, models, the camera
KEEPALIVE_S = 10.0  # idle connections, and requests not complete this long after the last answer
LINGER_S = 1.0  # a request body no handler reads is drained this long at most, then the connection closes
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
WANT_FILES = 16384  # the soft open-file limit the show asks for (ops/service.py's unit sets it too)
ADDRESSES_EVERY_S = 10.0  # the machine's addresses are read again on an unknown IP Host at most this often


def open_file_limit() -> int:
    """The soft open-file limit, first raised towards the hard one (at most WANT_FILES)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = WANT_FILES if hard == resource.RLIM_INFINITY else min(WANT_FILES, hard)
        if 0 <= soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    except (ImportError, OSError, ValueError):
        return 1024
    return soft if soft >= 0 else WANT_FILES


def limit_total(fd_limit: int) -> int:
    """Connections in all: TOTAL, or half of what the open-file limit leaves past the show's RESERVE."""
    return max(8, min(TOTAL, (fd_limit - 2 * RESERVE) // 2))


class Doorman:
    """Admission of TCP connections on the server's loop. `allowed(host)` is the show's allow-list (it counts
    and names a refused sender); `refused(reason)` counts a connection closed at accept."""

    def __init__(self, allowed: Callable[[str], bool], refused: Callable[[str], None],
                 fd_limit: int | None = None) -> None:
        self.allowed = allowed
        self.refused = refused
        self.fd_limit = open_file_limit() if fd_limit is None else fd_limit
        self.total = limit_total(self.fd_limit)
        self.per_sender = min(PER_SENDER, max(4, self.total // 4))
        self.open: dict[str, int] = {}  # sender -> connections it holds
        self.held = 0  # connections let in and not yet closed
        self.short_said = False

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for loop.create_server(): `make` (aiohttp's web.Server) is called only for
        a connection that is let in."""
        return lambda: Door(self, make)

    def refusal(self, transport: asyncio.BaseTransport) -> tuple[str, str]:
        """(sender, why it is refused, or "")."""
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if peer else "?"
        sock = transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if fd >= self.fd_limit - RESERVE:
            self.short(f"a connection got descriptor {fd}")
            return host, "descriptors short"
        if not self.allowed(host):
            return host, "sender not allowed"
        if self.held >= self.total:
            return host, "too many connections"
        if self.open.get(host, 0) >= self.per_sender:
            return host, "too many connections from one sender"
        return host, ""

    def short(self, detail: str) -> None:
        """Descriptors run short: said once, then only counted; the show plays on."""
        if not self.short_said:
            self.short_said = True
            log.error("web: descriptors run short (%s; the open-file limit is %d): new connections are refused "
                      "while it lasts (raise LimitNOFILE)", detail, self.fd_limit)

    def enter(self, host: str) -> None:
        self.open[host] = self.open.get(host, 0) + 1
        self.held += 1

    def leave(self, host: str) -> None:
        self.held -= 1
        n = self.open.get(host, 0) - 1
        if n > 0:
            self.open[host] = n
        else:
            self.open.pop(host, None)

    def summary(self) -> dict[str, int]:
        return {"open": self.held, "senders": len(self.open), "limit": self.total,
                "per_sender": self.per_sender}


class Door(asyncio.Protocol):
    """One accepted connection: refused and closed in connection_made, or handed to aiohttp's protocol,
    which gets every event from then on (this object stays in between to count the connection out)."""

    def __init__(self, doorman: Doorman, make: Callable[[], asyncio.Protocol]) -> None:
        self.doorman = doorman
        self.make = make
        self.inner: Any = None
        self.host = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        host, why = self.doorman.refusal(transport)
        if why:
            transport.abort()
            self.doorman.refused(why)
            return
        self.host = host
        self.doorman.enter(host)
        self.inner = self.make()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.inner is not None:
            self.doorman.leave(self.host)
            inner, self.inner = self.inner, None
            inner.connection_lost(exc)


def split_host(host: str) -> tuple[str, int | None]:
    """A Host header or an origin's netloc as (lowercase name or address without brackets, port or None)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name.rstrip("."), int(port) if port.isdigit() else None


def origin_key(origin: str) -> tuple[str, str, int] | None:
    """An origin as (scheme, host, port), the default port filled in; None for "null" or no origin."""
    parts = urllib.parse.urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    name, port = split_host(parts.netloc)
    return parts.scheme, name, port if port is not None else (443 if parts.scheme == "https" else 80)


def machine_names(configured: str = "") -> set[str]:
    names = {"localhost", socket.gethostname().lower()}
    names.add(socket.gethostname().split(".")[0].lower() + ".local")
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    if not is_wildcard(configured):
        names.add(configured.lower())
    return {n.rstrip(".") for n in names if n}


class Rules:
    """The Host and Origin rules of one server. `ports()`: the server's listening ports (its own pages)."""

    def __init__(self, configured_host: str, origins: Iterable[str], ports: Callable[[], Iterable[int]]) -> None:
        self.origins = {k for k in map(origin_key, origins) if k is not None}
        self.names = machine_names(configured_host) | {host for _, host, _ in self.origins}
        self.ports = ports
        self.addresses = machine_addresses()
        self._t_addresses = time.monotonic()

    def host_ok(self, host: str | None) -> bool:
        """A request's Host names this machine (no Host at all: not a browser, nothing to rebind)."""
        if not host:
            return True
        name, _ = split_host(host)
        if name in self.names or name.endswith(".localhost"):
            return True
        try:
            ip = ipaddress.ip_address(name.split("%", 1)[0])
        except ValueError:
            return False
        if ip.is_loopback or name in self.addresses:
            return True
        if time.monotonic() - self._t_addresses >= ADDRESSES_EVERY_S:  # a new lease since the start?
            self.addresses = machine_addresses()
            self._t_addresses = time.monotonic()
            return name in self.addresses
        return False

    def origin_ok(self, origin: str | None) -> bool:
        """A browser's Origin is one of the show's own pages (this machine, by a name the Host rule takes, at
        one of the server's ports) or a [web] origins entry. No Origin: not a browser, judged by the
        allow-list and the token."""
        if origin is None:
            return True
        key = origin_key(origin)
        if key is None:
            return False
        if key in self.origins:
            return True
        return key[0] == "http" and key[2] in set(self.ports()) and self.host_ok(key[1])
