"""The OSC address space as a table: `installation osc-map` and docs/osc.md (with the controller layouts
made from it by scripts/make_controller_layouts.py), from a registry's parameters and the protocol's
own addresses."""

from __future__ import annotations

from typing import Any

from installation.control.presets import ARG_TRIGGERS
from installation.control.web.oscquery import DOC as WEB_DOC
from installation.control.web.oscquery import PROTOCOL_NODES
from installation.core.params import Registry
from installation.show.config import FEEDBACK_PORT, OSC_PORT, OSCQUERY_PORT, WEB_PORT


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "-"
    if v == "":
        return '""'
    return str(v)


def address_rows(registry: Registry, values: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """One row per address: parameters in registry order, then the protocol addresses."""
    values = values or {}
    rows = []
    for p in registry.values():
        kind = p.kind
        rng = p.describe_range()
        if p.name in ARG_TRIGGERS:
            lo, hi = ARG_TRIGGERS[p.name]
            kind, rng = "trigger int", f"{lo}..{hi}; 0: ignored"
        elif p.kind == "trigger":
            rng = "non-zero or no argument fires"
        elif p.kind == "choice":
            rng += " (or index)"
        default = values.get(p.name, p.default)
        rows.append({"address": p.address, "type": kind, "range": rng, "default": _fmt(default),
                     "unit": p.unit, "description": p.description})
    kinds = {"N": "-", "f": "float out", "i": "int out", "s": "string out"}
    for n in PROTOCOL_NODES:
        rows.append({"address": n["FULL_PATH"], "type": kinds.get(n["TYPE"], n["TYPE"]), "range": "", "default": "",
                     "unit": "", "description": n["DESCRIPTION"]})
    return rows


def osc_map_text(registry: Registry, values: dict[str, Any] | None = None) -> str:
    rows = address_rows(registry, values)
    cols = ("address", "type", "range", "default", "unit")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    out = ["  ".join(c.ljust(widths[c]) for c in cols) + "  description"]
    for r in rows:
        out.append("  ".join(r[c].ljust(widths[c]) for c in cols) + "  " + r["description"])
    return "\n".join(out) + "\n"


def osc_map_markdown(registry: Registry) -> str:
    """docs/osc.md: the registry's defaults only, so it doesn't depend on any show."""
    rows = address_rows(registry)
    out = ["# OSC address space", "",
           "Generated from the parameter registry by `scripts/make_controller_layouts.py` "
           "(the same text as `installation osc-map --markdown`). Don't edit by hand: "
           "`tests/test_osc.py` fails when it is out of date.", "",
           f"Ports: OSC in {OSC_PORT} (UDP), feedback to controllers {FEEDBACK_PORT} (UDP), "
           f"OSCQuery {OSCQUERY_PORT} (HTTP and WebSocket, Vidvox's JSON), the web panel and status page "
           f"{WEB_PORT} (HTTP).", "",
           "## How messages are read", "",
           "- Every parameter is `/<group>/<name>` with one argument of its type, the one rule of OSC over UDP "
           "and the web alike: a number (int or float) for a number, `T`/`F` or a number (0: off) for a bool, "
           "a choice's name or index, text for text. A wrong type (the text `\"5\"` or `T` for a float, text "
           "for a bool) is refused and counted as `bad value`; numbers outside the range are clamped; NaN and "
           "infinity are dropped.",
           "- A choice takes its name or its index. Going out (feedback, `/sync`) a choice is its index, "
           "a bool 0 or 1.",
           "- A trigger fires on any non-zero value or on a message with no argument, and ignores 0, so a "
           "button's release (TouchOSC sends 1, then 0) does nothing. `/preset/save` and "
           "`/preset/recall` take the slot number 1..99.",
           "- Bundles are applied whole, in one frame, at once: future timetags are not waited for.",
           "- Address patterns set every parameter they match, but never fire a trigger: `*` any run of "
           "characters, `?` one, `[abc]`, `[a-z]`, `[!abc]` one of a set or not, `{foo,bar}` one of the "
           "words (`/seg/key_*`, `/{pre,mix}/*`). A part never spans a `/`. They are matched by the show's "
           "own automaton in time linear in the address, never by a regular expression; a pattern longer "
           "than 256 characters, with more than 64 choices of its `{...}`, with an unclosed `[` or `{`, or "
           "past 4096 states is refused and counted as `pattern refused` (docs/security.md).",
           "- Every change, from any source, is mirrored on the same address to the feedback targets "
           "(`[osc] feedback`, `--osc-feedback HOST:PORT`, or the sender with `feedback_to_sender`), "
           "at most once per address per frame; a value a controller sent is not echoed back to it "
           "unless it was clamped.",
           "- Unknown addresses, wrong types or counts and malformed datagrams are dropped, counted per "
           "address and shown in the HUD.", "",
           "## Who may control", "",
           "- Senders: by default this machine and the private and link-local networks (127.0.0.0/8, ::1, "
           "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, fc00::/7, fe80::/10). "
           "`[osc] allow = [\"192.168.1.20\", \"10.0.0.0/24\"]` replaces that list, `--osc-allow IP[/NET]` "
           "(repeatable) replaces the show's, and `allow = [\"any\"]` opens it to anyone. The same rule guards "
           "OSCQuery and the web panel (their connections are closed at accept). A refused sender is counted "
           "(`osc_refused_senders` in `--stats`), named once in the log and listed in the HUD.",
           "- Writes: `/preset/save` (and any later `/state/...`) changes what is stored and `/show/grab` writes "
           "pictures of visitors to disk: both are refused unless the show allows them. `[osc] allow_writes` "
           "unset: `/preset/save` works in `installation rehearse` and is refused in `installation run`; "
           "`/show/grab` is refused in both. `allow_writes = true` allows both, `false` neither. A refusal "
           "is counted (`osc_writes_refused`), logged and shown in the HUD, and leaves every file as it was.",
           "- Feedback targets may be names (`studio-ipad.local:9001`): they are resolved on a thread of their "
           "own, again every minute and, after a failure, with a back-off from 1 s to 60 s; a target whose "
           "sends fail is held for the same back-off. A target that becomes reachable gets every value at "
           "once. Failures are counted and shown in the HUD.",
           "- UDP and the token: a datagram can't carry `[web] token`, so with a token OSC over UDP is off "
           "unless `[osc] udp = true` (`udp` unset: on without a token, off with one; `false`: off). With UDP "
           "off no port is opened and `?HOST_INFO` names none; values change over the panel and OSCQuery's "
           "WebSocket, with the token, and feedback still goes out.",
           "- Models by name: `/model/select` takes the name of a model in the show's model folders (its "
           "model's folder, `models/` beside the show file, the installed models), at most 64 letters, digits "
           "and `._-`, never a path; a path is refused as `bad value`. What a controller sees of a failed "
           "swap names no folder of the machine; the log has the full reason.",
           "- `installation check SHOW` lists the ports and interfaces the show opens, who may send, whether "
           "writes are allowed, what keys need, and what a token covers and what it doesn't.", "",
           "## Presets, state, recording", "",
           "- `/preset/save N` stores the look (every persistent parameter except the `display` calibration "
           "and the HUD); `/preset/recall N` glides floats over `/preset/morph_s` seconds, the rest switch at "
           "once; `/preset/next`, `/preset/prev` (keys Right, Left) step through the saved slots.",
           "- Presets, the last live values (restored at start unless `[state] restore = false`), OSC "
           "recordings and the log live in the show's state folder: `--state DIR`, else "
           "`$INSTALLATION_STATE_DIR/<show>`, else `$XDG_STATE_HOME/installation/<show>` "
           "(`~/.local/state/installation/<show>`). An unreadable file there is renamed `*.corrupt-TIME` "
           "and ignored.",
           "- `--osc-record [FILE]` writes one JSON line per applied message: "
           "`{\"t\": s, \"frame\": n, \"address\": ..., \"args\": [...]}`, where `frame` is the first "
           "source frame that could see it. `installation rehearse --osc-replay FILE` plays it back by time; "
           "with `--lockstep`, by frame: before frame N is processed every message with `frame <= N` is "
           "applied, and ramps run on the frame clock, so a rehearsal is the same frame for frame every time.",
           "- Controllers: `controllers/installation.tosc` (TouchOSC) and `controllers/installation.maxpat` "
           "(Max) are generated with this page; OSCQuery clients read the same tree over HTTP.", "",
           *WEB_DOC]
    head = "| address | type | range | default | unit | description |"
    sep = "|---|---|---|---|---|---|"
    groups: dict[str, list[dict[str, str]]] = {}  # by group, in the order groups first appear
    for r in rows:
        groups.setdefault(r["address"].strip("/").split("/")[0], []).append(r)
    out += ["## Parameters", ""]
    for g, members in groups.items():
        title = {"sync": "## Protocol", "status": "## Status (sent to the feedback targets every second)"}
        out += [title.get(g, f"### {g}"), "", head, sep]
        for r in members:
            cells = [f"`{r['address']}`", r["type"], r["range"], r["default"], r["unit"], r["description"]]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


