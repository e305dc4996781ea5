"""Zeroconf: the show announced on the local network as `_oscjson._tcp` whenever OSCQuery is served, and as
`_osc._udp` while OSC in listens on UDP, so TouchOSC, Chataigne or an OSCQuery browser finds it without an
address typed in.

Announcing takes seconds (zeroconf probes the name first), so it runs on a thread of its own and never
holds up the show. A failure (no multicast route, no interface up yet at boot) is logged with its reason
and tried again with a back-off from RETRY_MIN_S to RETRY_MAX_S; success after failures is logged too.
Never on loopback: a show listening on 127.0.0.1 can't be reached from another machine, and a test must not
announce itself to the network.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from installation.control.net import reachable_host

log = logging.getLogger("installation.web")

RETRY_MIN_S = 2.0
RETRY_MAX_S = 60.0
OSCJSON = "_oscjson._tcp.local."
OSC_UDP = "_osc._udp.local."


def instance_name(show: str) -> str:
    """`show on host`: unique on a network where two machines play the same show."""
    label = f"{show or 'installation'} on {socket.gethostname().split('.')[0]}"
    return label.replace(".", "_")[:63]  # a DNS label: no dots, at most 63 bytes


class Advertiser:
    """Registers the services on a thread, retrying until it works; close() withdraws them."""

    def __init__(self, show: str, host: str, oscquery_port: int, osc_port: int) -> None:
        """osc_port 0: OSC over UDP is off, or not listening: OSCQuery alone is announced."""
        self.name = instance_name(show)
        self.host = host
        self.services = [(OSCJSON, oscquery_port)] + ([(OSC_UDP, osc_port)] if osc_port else [])
        self.failures = 0
        self.error = ""
        self.registered = False
        self._zc: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zeroconf", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        delay = RETRY_MIN_S
        while not self._stop.is_set():
            try:
                self._register()
                if self.failures:
                    log.info("zeroconf: %s advertised at last (after %d failures)", self.name, self.failures)
                else:
                    log.info("zeroconf: advertised %r as %s", self.name,
                             ", ".join(f"{kind} port {port}" for kind, port in self.services))
                self.registered, self.error = True, ""
                return
            except Exception as e:  # no multicast, no interface: said, then tried again; never the show's end
                self._close_zc()
                self.failures += 1
                first = not self.error
                self.error = f"{type(e).__name__}: {e}"[:200]
                if first:
                    log.warning("zeroconf: can't advertise %r (%s); retrying every %g..%g s", self.name, self.error,
                                RETRY_MIN_S, RETRY_MAX_S)
            self._stop.wait(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _register(self) -> None:
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        ip = reachable_host(self.host)
        self._zc = Zeroconf(ip_version=IPVersion.V4Only)
        for kind, port in self.services:
            if self._stop.is_set():
                return
            self._zc.register_service(ServiceInfo(kind, f"{self.name}.{kind}", port=port,
                                                  properties={"txtvers": "1"}, parsed_addresses=[ip]))

    def hud(self) -> list[str]:
        return [f"! zeroconf: {self.error} ({self.failures} tries)"] if self.error else []

    def _close_zc(self) -> None:
        zc, self._zc = self._zc, None
        if zc is None:
            return
        try:
            zc.unregister_all_services()
            zc.close()
        except Exception as e:
            log.debug("zeroconf close: %s", e)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._close_zc()
