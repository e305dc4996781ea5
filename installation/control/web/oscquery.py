"""OSCQuery's address space (Vidvox's OSCQueryProposal): the registry as one JSON tree, a query on it
answered as the spec has it, HOST_INFO, and the difference between two trees as PATH_* notices.

GET /                    the whole tree (CONTENTS nested by group)
GET /pre/blur            one node: FULL_PATH, TYPE, ACCESS, VALUE, RANGE, DESCRIPTION, UNIT, CLIPMODE
GET /pre/blur?VALUE      one attribute: {"VALUE": [3.0]}; one the node lacks: 204; one the spec lacks: 400
GET /?HOST_INFO          NAME, OSC_IP, OSC_PORT, OSC_TRANSPORT, WS_IP, WS_PORT, EXTENSIONS

No sockets here: control/web/server.py serves this over HTTP and WebSocket. VALUE is read from the store when a
request comes, so nothing is mirrored. What changes the tree's shape while a show plays is what lies on
disk: the models a show can select (RANGE of /model/select) and the presets saved (RANGE of
/preset/recall); `changes()` turns two trees into the PATH_ADDED / PATH_REMOVED / PATH_CHANGED notices a
listening client gets.

Write-only methods (the triggers and /sync: ACCESS 2) carry VALUE [null]: the spec's JSON for the values
of I and N ("nil, a placeholder where necessary"), and what a client that tells a method from a container
by its VALUE (python-oscquery) needs to read the tree; ?VALUE on them answers 204, as the spec says for a
value that can't be read. /status/* are read-only (ACCESS 1) and carry a value from the start (0 until
the first figures come).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from installation.control.net import reachable_host
from installation.control.presets import ARG_TRIGGERS
from installation.core.params import Param, Registry
from installation.show.config import OSCQUERY_PORT, WEB_PORT

ACCESS_NONE, ACCESS_READ, ACCESS_WRITE, ACCESS_RW = 0, 1, 2, 3
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION", "UNIT", "CLIPMODE",
              "TAGS", "CRITICAL", "EXTENDED_TYPE")
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "UNIT": True, "CLIPMODE": True,
              "TAGS": False, "CRITICAL": False, "EXTENDED_TYPE": False, "LISTEN": True, "PATH_CHANGED": True,
              "PATH_ADDED": True, "PATH_REMOVED": True, "PATH_RENAMED": False}

# What /status/* sends every second (osc/feedback.py): name, OSC type, description.
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
    ("governor", "s", "what the frame-budget governor gave up to keep the source's rate, and why"),
]

# Protocol addresses: not parameters, but part of what a controller can use.
PROTOCOL_NODES: list[dict[str, Any]] = [
    {"FULL_PATH": "/sync", "TYPE": "N", "ACCESS": ACCESS_WRITE, "VALUE": [None],
     "DESCRIPTION": "send every current value back (to the feedback targets and the sender)"},
    *({"FULL_PATH": f"/status/{name}", "TYPE": t, "ACCESS": ACCESS_READ, "VALUE": [{"f": 0.0, "i": 0}.get(t, "")],
       "DESCRIPTION": d} for name, t, d in STATUS),
]


def osc_type(p: Param) -> str:
    if p.kind == "trigger":
        return "i" if p.name in ARG_TRIGGERS else "I"
    return {"float": "f", "int": "i", "bool": "T", "choice": "s", "str": "s"}[p.kind]


def node_for(p: Param, value: Any = None, vals: Sequence[Any] | None = None) -> dict[str, Any]:
    """One parameter as an OSCQuery method; `vals`: the values it takes where they change while the show
    plays (the models in the show's folders, the saved preset slots)."""
    n: dict[str, Any] = {"FULL_PATH": p.address, "TYPE": osc_type(p),
                         "ACCESS": ACCESS_WRITE if p.kind == "trigger" else ACCESS_RW,
                         "DESCRIPTION": p.description}
    if p.kind in ("float", "int"):
        n["RANGE"] = [{"MIN": p.lo, "MAX": p.hi}]
        n["CLIPMODE"] = ["both"]  # OSC clamps to the range (the web refuses what is outside it)
    elif p.kind == "choice":
        n["RANGE"] = [{"VALS": list(p.choices)}]
    elif p.name in ARG_TRIGGERS:
        lo, hi = ARG_TRIGGERS[p.name]
        n["RANGE"] = [{"MIN": lo, "MAX": hi}]
        n["CLIPMODE"] = ["none"]  # a slot outside the range is refused, not clamped
    if vals is not None:
        n["RANGE"] = [{**(n.get("RANGE") or [{}])[0], "VALS": list(vals)}]
    if p.unit:
        n["UNIT"] = [p.unit]
    n["VALUE"] = [None if p.kind == "trigger" else wire_value(p, p.default if value is None else value)]
    return n


def wire_value(p: Param, value: Any) -> Any:
    """A value as its TYPE says (a float parameter's default may be written as 0): what VALUE holds and
    what a listening client is sent."""
    try:
        return p.coerce(value)
    except ValueError:
        return value


def tree(registry: Registry, values: Mapping[str, Any] | None = None, protocol: bool = True,
         vals: Mapping[str, Sequence[Any]] | None = None, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The whole address space as one OSCQuery node. `vals`: parameter name -> the values it takes now;
    `status`: the /status/* figures last measured (their VALUE)."""
    values, vals, status = values or {}, vals or {}, status or {}
    root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": ACCESS_NONE, "DESCRIPTION": "installation", "CONTENTS": {}}
    leaves = [node_for(p, values.get(p.name), vals.get(p.name)) for p in registry.values()]
    if protocol:
        for n in PROTOCOL_NODES:
            leaf = dict(n)
            name = leaf["FULL_PATH"].removeprefix("/status/")
            if name in status:
                leaf["VALUE"] = [status[name]]
            leaves.append(leaf)
    for leaf in leaves:
        parts = leaf["FULL_PATH"].strip("/").split("/")
        node = root
        for i, part in enumerate(parts[:-1]):
            path = "/" + "/".join(parts[:i + 1])
            node = node["CONTENTS"].setdefault(part, {"FULL_PATH": path, "ACCESS": ACCESS_NONE,
                                                      "DESCRIPTION": f"{part} parameters", "CONTENTS": {}})
        node["CONTENTS"][parts[-1]] = leaf
    return root


def find(node: dict[str, Any], path: str) -> dict[str, Any] | None:
    for part in [p for p in path.strip("/").split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


def answer(root: dict[str, Any], path: str, query: str) -> tuple[int, Any]:
    """(HTTP status, JSON body or None) for GET path?query on the tree."""
    attr = urllib.parse.unquote(query.split("&")[0]).upper() if query else ""
    if attr and attr not in ATTRIBUTES:
        return 400, {"error": f"attribute {attr} not understood (one of {', '.join(ATTRIBUTES)}, or HOST_INFO)"}
    node = find(root, urllib.parse.unquote(path))
    if node is None:
        return 404, {"error": f"no such OSC address: {path}"}
    if not attr:
        return 200, node
    if attr not in node or (attr == "VALUE" and not node.get("ACCESS", ACCESS_RW) & ACCESS_READ):
        return 204, None  # the spec: an attribute this node doesn't have, a value that can't be read
    return 200, {attr: node[attr]}


def host_info(name: str, osc_host: str, osc_port: int, ws_port: int) -> dict[str, Any]:
    """osc_port 0: no OSC over UDP ([osc] udp off): no OSC_* field names a port that isn't there."""
    host = reachable_host(osc_host)
    udp = {"OSC_IP": host, "OSC_PORT": osc_port, "OSC_TRANSPORT": "UDP"} if osc_port else {}
    return {"NAME": name, **udp, "WS_IP": host, "WS_PORT": ws_port, "EXTENSIONS": dict(EXTENSIONS)}


def shape(node: dict[str, Any], out: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every path of a tree with its attributes but its value: what a PATH_* notice is about."""
    out = {} if out is None else out
    out[node["FULL_PATH"]] = {k: v for k, v in node.items() if k not in ("CONTENTS", "VALUE")}
    for child in node.get("CONTENTS", {}).values():
        shape(child, out)
    return out


def changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The PATH_ADDED / PATH_REMOVED / PATH_CHANGED notices that take a client from `old` to `new`."""
    out = [{"COMMAND": "PATH_REMOVED", "DATA": p} for p in old if p not in new]
    out += [{"COMMAND": "PATH_ADDED", "DATA": p} for p in new if p not in old]
    out += [{"COMMAND": "PATH_CHANGED", "DATA": p} for p in new if p in old and old[p] != new[p]]
    return out


# docs/osc.md's section on OSCQuery and the web (control/addressmap.py puts it in the page)
DOC = [
    "## OSCQuery and the web panel", "",
    "One web server (aiohttp, on a thread of its own, never the render thread) answers on two ports: "
    f"OSCQuery on `[osc] oscquery_port` ({OSCQUERY_PORT}, `--oscquery-port`) and the panel on `[web] port` "
    f"({WEB_PORT}, `--web-port`; 0 turns either off). Both listen on `[osc] host`, follow `[osc] allow` "
    "(others are closed when they connect) and are off with `--no-osc` or `[osc] enabled = false`; "
    "`docs/security.md` has their limits and the Host and Origin rules.", "",
    "- **The tree** (Vidvox's OSCQueryProposal): `GET /` is every address with `FULL_PATH`, `CONTENTS`, "
    "`TYPE` (`f`, `i`, `T` for a bool, `s` for a choice or text, `I` for a trigger), `ACCESS`, `VALUE`, "
    "`RANGE` (`MIN`/`MAX`, or `VALS`), `DESCRIPTION`, `UNIT` and `CLIPMODE`; `GET /mix/amount?VALUE` is one "
    "attribute (204 when the node has none, 400 for an attribute the spec lacks, 404 for an unknown path); "
    "`GET /?HOST_INFO` names the OSC port, `WS_IP`/`WS_PORT` and the extensions (`LISTEN`, `PATH_CHANGED`, "
    "`PATH_ADDED`, `PATH_REMOVED`: true). `RANGE` of `/model/select` lists the models in the show's folders "
    "and `RANGE` of `/preset/recall` the saved presets, so they change while the show plays.",
    "- **Write-only and trigger methods** (`/preset/save`, `/preset/recall`, `/preset/next`, `/preset/prev`, "
    "`/seg/relearn`, `/show/grab`, `/sync`) have `ACCESS` 2 (set, never read), `TYPE` `I` (a trigger), `i` "
    "(one that takes a slot) or `N` (`/sync`), and `VALUE` `[null]`: the spec's JSON for the value of `I` "
    "and `N`, a placeholder where one is needed. A method without `VALUE` reads as a container to clients "
    "that tell the two apart by it (python-oscquery 0.4 refused the whole tree), and a made-up value such "
    "as 0 would claim what the method doesn't hold; `GET /preset/save?VALUE` answers 204, as the spec says "
    "for a value that can't be read. `/status/*` are read-only (`ACCESS` 1) and carry a value from the "
    "start (0 until the first figures).",
    f"- **The WebSocket** (the OSCQuery port, `ws://HOST:{OSCQUERY_PORT}/`, and the panel's `/ws`): send "
    "`{\"COMMAND\": \"LISTEN\", \"DATA\": \"/mix/amount\"}` to hear an address (a container, `/` "
    "included, means everything under it) and `IGNORE` to stop. Every change, whatever made it (OSC, a "
    "preset, a key, MIDI, a panel), arrives within a frame or two as a binary OSC message typed as the tree "
    "says (a bool `T`/`F`, a choice its name); `/status/*` arrive every second. When models or presets "
    "change the tree, listeners get `{\"COMMAND\": \"PATH_CHANGED\", \"DATA\": \"/preset/recall\"}` "
    "(`PATH_ADDED`, `PATH_REMOVED` likewise).",
    "- **Values over the WebSocket** are binary OSC packets and take the same path as UDP (judged, "
    "coalesced per frame, counted, the same write rule and type rule: `\"5\"` or `T` for a float is "
    "refused), but strictly: a number outside its `RANGE`, JSON nested too deep, more than 200 "
    "`LISTEN`/`IGNORE` a second, an unknown address, an address pattern, malformed JSON or OSC and unknown "
    "commands are "
    "refused with `{\"COMMAND\": \"ERROR\", \"DATA\": \"why\"}` on the socket (at most 20 a second), "
    "counted (`web_refused` in `--stats`) and change nothing. A bare `/sync` sends this client its listened "
    "values. One client's messages are read at most 400 a second; a client that stops reading (a send "
    "waits 2 s, or a ping goes unanswered for 2.5 s) is cut off (`web_clients_dropped`) without holding "
    "up the others.",
    "- **Zeroconf**: a show listening beyond loopback announces itself as `_oscjson._tcp` (the OSCQuery port) "
    "whenever OSCQuery is served, and as `_osc._udp` (OSC in) while OSC listens on UDP, named `SHOW on HOST`. "
    "A failure is logged with its reason, shown in the HUD "
    "and tried again with a back-off from 2 s to 60 s.",
    f"- **The panel**, `http://HOST:{WEB_PORT}/` on a phone or a laptop: blackout and freeze up front, the models "
    "(a tap crossfades, over `/model/crossfade`), the presets (recall; save where writes are allowed), then "
    "every parameter by its group (`pre/`, `seg/`, `mix/`, `display/`, ...) with its range, unit and "
    "description: sliders, toggles, choices, triggers. Every control carries "
    "`data-address=\"/the/osc/address\"`. It is an OSCQuery client itself (the tree from `/api/tree`, "
    "values over `/ws`), fetches nothing from outside the machine, and reconnects by itself.",
    "- **The status page**, `/status`: fps, latency p50/p95/p99, dropped frames, faults by kind with the "
    "last one, reconnects, memory, uptime, the model, the schedule's look, the preset, and a thumbnail of "
    "the output twice a second while the page is open (`[web] thumbnail = false`: none, no picture of the "
    "room leaves the machine). Its figures are `/api/status`, from the same counters as the stats JSON and "
    "the heartbeat.",
    "- **Access**: looking is open to the allowed network. With `[web] token = \"...\"` (8 to 128 letters, "
    f"digits, `._~-`), changing values needs the token: open `http://HOST:{WEB_PORT}/?token=...` once (it is kept "
    "in a cookie), give `?token=` on the WebSocket's URL or send `Authorization: Bearer ...`; without it a "
    "client may listen, not change. A WebSocket opened by a page from another origin (another site, or this "
    "machine at another port) is refused unless `[web] origins` names it, and so is a request whose `Host` "
    "is not this machine. "
    "`/preset/save` and `/show/grab` follow `[osc] allow_writes` on the web too.", "",
]
