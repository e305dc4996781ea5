"""Who may control a show on a network the technician doesn't fully own (a venue's Wi-Fi, a shared LAN).

Senders: by default loopback and the private and link-local ranges; `[osc] allow` or `--osc-allow`
replace that list, and "any" opens it explicitly. Everything else is refused and counted, and each
refused sender is named once in the log and stays named in the HUD: a stranger on the network must be
visible, but a flood from one must not fill the log. OSC over UDP and OSCQuery's HTTP use the same gate.

Writes: messages that write to disk or change what is stored (/preset/save, /show/grab, later /state/...)
are refused unless the show allows them: on for `rehearse`, off for `run`, `[osc] allow_writes`
overrides. /show/grab writes pictures of visitors, so it follows the privacy default (nothing is saved
unless the show says so): only an explicit `allow_writes = true` lets it through.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.params import Registry
from installation.show.config import FEEDBACK_PORT

log = logging.getLogger("installation.osc")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOW = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                 "fc00::/7", "fe80::/10")
PROTECTED = ("preset/save", "show/grab")  # and every address under /state/
MAX_NAMED = 64  # refused senders named one by one; more than this are one count ("others")


def parse_allow(items: Iterable[str]) -> list[Network] | None:
    """Allowed senders as networks; None means anyone. An empty list gives the default ranges.
    Raises UserError."""
    items = [i.strip() for i in items]
    if any(i.lower() == "any" for i in items):
        return None
    out = []
    for item in items or DEFAULT_ALLOW:
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise UserError(f"allowed sender {item!r}",
                            expected='an IP address, a network like 10.0.0.0/24, or "any"') from None
    return out


def parse_target(text: str, default_port: int | None = FEEDBACK_PORT) -> tuple[str, int]:
    """'HOST:PORT', or 'HOST' where a default port is given, as (host, port). Raises UserError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep and default_port is not None:
        host, port = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"feedback target {text!r}", expected=f"HOST:PORT, e.g. 192.168.1.20:{FEEDBACK_PORT}")
    return host, int(port)


def check_section(osc: Any, registry: Registry, file: Path) -> Any:
    """The [osc] section checker (app.load_show hands it to show/config.load_show): its senders and its
    feedback targets read by the parsers the running show uses, a target's port required in the file."""
    for item in osc.allow:
        try:
            parse_allow([item])
        except UserError as e:
            raise UserError(f"{item!r} is not an IP address, a network like 10.0.0.0/24, or \"any\"", file=file,
                            key="osc.allow", expected=e.expected) from None
    for item in osc.feedback:
        try:
            parse_target(item, default_port=None)
        except UserError as e:
            raise UserError(f"{item!r} is not HOST:PORT", file=file, key="osc.feedback", expected=e.expected) from None
    return osc


def describe_allow(allow: list[Network] | None) -> str:
    if allow is None:
        return 'anyone (allow = ["any"])'
    nets = ", ".join(str(n) for n in allow)
    if sorted(map(str, allow)) == sorted(DEFAULT_ALLOW):
        return f"this machine and private/link-local networks only ({nets})"
    return nets


def is_protected(name: str) -> bool:
    return name in PROTECTED or name.startswith("state/")


class Gate:
    """The allow-list and the write rule of one show. allowed() runs on the receiver threads."""

    def __init__(self, allow: list[Network] | None, writes: bool, grabs: bool, stats: Any = None) -> None:
        self.allow = allow
        self.writes = writes
        self.grabs = grabs
        self.stats = stats  # the show's Stats: refusals reach the stats JSON and the health figures
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}  # sender -> refused datagrams or requests
        self.refused_others = 0

    def allowed(self, host: str, what: str = "OSC") -> bool:
        if self.allow is None:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports 10.0.0.5 as ::ffff:10.0.0.5
        if ip is not None and any(ip in net for net in self.allow):
            return True
        with self._lock:
            first = host not in self.refused and len(self.refused) < MAX_NAMED
            if host in self.refused or first:
                self.refused[host] = self.refused.get(host, 0) + 1
            else:
                self.refused_others += 1
        if self.stats is not None:
            self.stats.count("osc_refused_senders")
        if first:
            log.warning("%s from %s refused: not on the allow-list (%s); further messages from it are counted, "
                        "not logged", what, host, describe_allow(self.allow))
        return False

    def write_refusal(self, name: str) -> str:
        """Why a protected write is refused here, or "" when it may go ahead."""
        if not is_protected(name):
            return ""
        if name == "show/grab" and not self.grabs:
            return "grabs over OSC need [osc] allow_writes = true in the show (pictures of visitors)"
        if not self.writes:
            return "writes over OSC are off in `installation run`: set [osc] allow_writes = true"
        return ""

    def count_write_refused(self) -> None:
        if self.stats is not None:
            self.stats.count("osc_writes_refused")

    def hud(self) -> list[str]:
        with self._lock:
            if not self.refused and not self.refused_others:
                return []
            named = sorted(self.refused.items(), key=lambda kv: -kv[1])[:3]
            n = sum(self.refused.values()) + self.refused_others
            more = len(self.refused) - len(named) + (1 if self.refused_others else 0)
        who = ", ".join(f"{h} ({c})" for h, c in named) + (f" +{more} more" if more > 0 else "")
        return [f"! refused {n} from senders not allowed: {who}"]
