"""OSCQuery: the address space as Vidvox's JSON over HTTP, so a controller can build itself.

GET /                    the whole tree (CONTENTS nested by group)
GET /pre/blur            one node: FULL_PATH, TYPE, ACCESS, VALUE, RANGE, DESCRIPTION
GET /pre/blur?VALUE      one attribute: {"VALUE": [3.0]}
GET /?HOST_INFO          NAME, OSC_IP, OSC_PORT, OSC_TRANSPORT, EXTENSIONS

Own module on http.server rather than python-oscquery 0.4: that package requires zeroconf and requests,
always starts multicast advertising in start() (not wanted in tests, nor on a locked-down venue
network), binds every interface regardless of the OSC host, registers atexit hooks, and keeps values in
an address space of its own that would have to be mirrored from the store. Here VALUE is read from the
store at request time, nothing is duplicated, and the whole thing is one ThreadingHTTPServer.
Advertising `_oscjson._tcp` over zeroconf happens only when the zeroconf package happens to be
installed and the server listens beyond loopback; the project doesn't depend on it.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from installation.control.presets import ARG_TRIGGERS
from installation.core.params import Param, ParamStore, Registry

log = logging.getLogger("installation.oscquery")

ACCESS_NONE, ACCESS_READ, ACCESS_WRITE, ACCESS_RW = 0, 1, 2, 3
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION", "HOST_INFO")

# What /status/* sends every second (osc.py): name, OSC type, description.
STATUS = [
    ("fps", "f", "frames presented per second"),
    ("latency_ms", "f", "camera-to-screen latency, median of the last frames"),
    ("dropped", "i", "frames dropped so far"),
    ("errors", "i", "runtime faults plus rejected OSC messages so far"),
    ("heartbeat", "i", "seconds since the show started, sent every second"),
    ("frames", "i", "fresh frames presented since the show started"),
    ("reconnects", "i", "times the source was lost and opened again"),
    ("memory_mb", "f", "resident memory of the show's process, MiB"),
    ("preset", "i", "the preset last saved or recalled (0: none)"),
]

# Protocol addresses: not parameters, but part of what a controller can use.
PROTOCOL_NODES: list[dict[str, Any]] = [
    {"FULL_PATH": "/sync", "TYPE": "N", "ACCESS": ACCESS_WRITE,
     "DESCRIPTION": "send every current value back (to the feedback targets and the sender)"},
    *({"FULL_PATH": f"/status/{name}", "TYPE": t, "ACCESS": ACCESS_READ, "DESCRIPTION": d} for name, t, d in STATUS),
]


def osc_type(p: Param) -> str:
    if p.kind == "trigger":
        return "i" if p.name in ARG_TRIGGERS else "I"
    return {"float": "f", "int": "i", "bool": "T", "choice": "s", "str": "s"}[p.kind]


def node_for(p: Param, value: Any = None) -> dict[str, Any]:
    n: dict[str, Any] = {"FULL_PATH": p.address, "TYPE": osc_type(p),
                         "ACCESS": ACCESS_WRITE if p.kind == "trigger" else ACCESS_RW,
                         "DESCRIPTION": p.description + (f" [{p.unit}]" if p.unit else "")}
    if p.kind in ("float", "int"):
        n["RANGE"] = [{"MIN": p.lo, "MAX": p.hi}]
    elif p.kind == "choice":
        n["RANGE"] = [{"VALS": list(p.choices)}]
    elif p.name in ARG_TRIGGERS:
        lo, hi = ARG_TRIGGERS[p.name]
        n["RANGE"] = [{"MIN": lo, "MAX": hi}]
    if p.kind != "trigger":
        n["VALUE"] = [value if value is not None else p.default]
    return n


def tree(registry: Registry, values: dict[str, Any] | None = None, protocol: bool = True) -> dict[str, Any]:
    """The whole address space as one OSCQuery node."""
    values = values or {}
    root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": ACCESS_NONE, "CONTENTS": {}}
    leaves = [node_for(p, values.get(p.name)) for p in registry.values()]
    if protocol:
        leaves += [dict(n) for n in PROTOCOL_NODES]
    for leaf in leaves:
        parts = leaf["FULL_PATH"].strip("/").split("/")
        node = root
        for i, part in enumerate(parts[:-1]):
            node = node["CONTENTS"].setdefault(part, {"FULL_PATH": "/" + "/".join(parts[:i + 1]),
                                                      "ACCESS": ACCESS_NONE, "CONTENTS": {}})
        node["CONTENTS"][parts[-1]] = leaf
    return root


def find(node: dict[str, Any], path: str) -> dict[str, Any] | None:
    for part in [p for p in path.strip("/").split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


class _Handler(BaseHTTPRequestHandler):
    server: OscQueryHTTPServer
    protocol_version = "HTTP/1.1"

    def parse_request(self) -> bool:
        # the show's allow-list guards every method, before any of the tree is read
        if not super().parse_request():
            return False
        if self.server.allowed(self.client_address[0]):
            return True
        self.close_connection = True
        self._send(403, {"error": "this sender is not on the show's allow-list ([osc] allow)"})
        return False

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = url.query.split("&")[0].upper() if url.query else ""
        srv = self.server
        if query == "HOST_INFO":
            return self._send(200, srv.host_info())
        if query and query not in ATTRIBUTES:
            return self._send(400, {"error": f"attribute {query} not understood"})
        node = find(tree(srv.store.registry, srv.store.targets()), urllib.parse.unquote(url.path))
        if node is None:
            return self._send(404, {"error": "no such OSC address"})
        if query:
            if query not in node:
                return self._send(204, None)  # the spec: an attribute the node doesn't have
            return self._send(200, {query: node[query]})
        return self._send(200, node)

    def _send(self, code: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class OscQueryHTTPServer(ThreadingHTTPServer):
    """Answers OSCQuery requests from the store, a thread per request (requests are rare and short)."""

    daemon_threads = True
    allow_reuse_address = True  # TCP: a restart must not wait out TIME_WAIT

    def __init__(self, address: tuple[str, int], store: ParamStore, name: str, osc_host: str,
                 osc_port: int, allowed: Callable[[str], bool]) -> None:
        self.allowed = allowed
        self.store = store
        self.name = name
        self.osc_host = osc_host
        self.osc_port = osc_port
        super().__init__(address, _Handler)

    def host_info(self) -> dict[str, Any]:
        host = self.osc_host
        if host in ("", "0.0.0.0", "::"):
            host = _primary_ip()
        return {"NAME": self.name, "OSC_IP": host, "OSC_PORT": self.osc_port, "OSC_TRANSPORT": "UDP",
                "EXTENSIONS": {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True,
                               "TAGS": False, "CLIPMODE": False, "UNIT": False, "CRITICAL": False,
                               "LISTEN": False, "PATH_CHANGED": False}}


def _primary_ip() -> str:
    """The address other machines reach us on (no packet is sent: connect() on UDP only picks a route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def advertise(name: str, http_port: int, osc_port: int, host: str) -> Any:
    """Announce `_oscjson._tcp` (and `_osc._udp`) when zeroconf is installed; None otherwise. Never on
    loopback: multicast from a test or a loopback-only show would only confuse the network."""
    if host.startswith("127.") or host in ("localhost", "::1"):
        return None
    try:
        from zeroconf import ServiceInfo, Zeroconf
    except ImportError:
        return None
    ip = _primary_ip() if host in ("", "0.0.0.0", "::") else host
    try:
        zc = Zeroconf()
        label = name.replace(".", "_") or "installation"
        for kind, port in (("_oscjson._tcp.local.", http_port), ("_osc._udp.local.", osc_port)):
            zc.register_service(ServiceInfo(kind, f"{label}.{kind}", port=port, properties={"txtvers": "1"},
                                            parsed_addresses=[ip]))
        log.info("advertised %s over zeroconf (OSCQuery port %d)", label, http_port)
        return zc
    except Exception as e:  # optional: a network without multicast must not stop the show
        log.warning("zeroconf advertising failed: %s", e)
        return None
