#!/usr/bin/env python3
"""Generate the controller layouts and the OSC docs from the parameter registry, so they never drift:

  controllers/installation.tosc     TouchOSC (zlib-compressed XML): a page per group, presets and status
  controllers/installation.maxpat   Max: a control per parameter -> [udpsend], [udpreceive 9001] -> set
  docs/osc.md                       the address space (= `installation osc-map --markdown`)

    python scripts/make_controller_layouts.py            write them
    python scripts/make_controller_layouts.py --check    exit 1 when any is out of date (tests/test_osc.py)

Everything is deterministic (ids derived from addresses, no dates), so a regeneration with no registry
change writes the same bytes. The layouts send to port 9000 and listen for feedback on 9001; in TouchOSC
set the connection's host to the show's machine, in Max edit the [udpsend] box.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from installation.app import default_registry  # noqa: E402
from installation.control.addressmap import osc_map_markdown  # noqa: E402
from installation.control.presets import ARG_TRIGGERS  # noqa: E402
from installation.control.web.oscquery import PROTOCOL_NODES  # noqa: E402
from installation.core.params import Param, Registry  # noqa: E402
from installation.show.config import FEEDBACK_PORT, OSC_PORT  # noqa: E402

TOSC = REPO / "controllers" / "installation.tosc"
MAXPAT = REPO / "controllers" / "installation.maxpat"
DOCS = REPO / "docs" / "osc.md"
PRESET_BUTTONS = 8  # recall/save buttons on the live page (the protocol takes 1..99)

W, H = 1024, 768
TAB_H = 40
ROW_H = 44
ROWS_PER_PAGE = (H - TAB_H - 8) // ROW_H

PALETTE = [(0.20, 0.55, 0.85), (0.90, 0.55, 0.20), (0.35, 0.75, 0.40), (0.80, 0.35, 0.55), (0.60, 0.50, 0.85),
           (0.85, 0.75, 0.25), (0.30, 0.70, 0.75), (0.75, 0.40, 0.30)]


# ---- TouchOSC ---------------------------------------------------------------------------------------------

def _id(*parts: Any) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "installation/tosc/" + "/".join(map(str, parts))))


def _cdata(s: str) -> str:
    return "<![CDATA[" + s.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _prop(kind: str, key: str, value: Any) -> str:
    if kind == "r":
        x, y, w, h = value
        v = f"<x>{x}</x><y>{y}</y><w>{w}</w><h>{h}</h>"
    elif kind == "c":
        r, g, b, a = value
        v = f"<r>{r:g}</r><g>{g:g}</g><b>{b:g}</b><a>{a:g}</a>"
    elif kind == "s":
        v = _cdata(str(value))
    elif kind == "b":
        v = "1" if value else "0"
    else:
        v = f"{value:g}" if isinstance(value, float) else str(value)
    return f"<property type='{kind}'><key>{_cdata(key)}</key><value>{v}</value></property>"


def _partial(kind: str, conversion: str, value: str, lo: Any = 0, hi: Any = 1) -> str:
    return (f"<partial><type>{kind}</type><conversion>{conversion}</conversion><value>{_cdata(value)}</value>"
            f"<scaleMin>{lo:g}</scaleMin><scaleMax>{hi:g}</scaleMax></partial>")


def _osc(address: str, args: list[str], send: bool = True, receive: bool = True, var: str = "x",
         condition: str = "ANY") -> str:
    return (f"<osc><enabled>1</enabled><send>{int(send)}</send><receive>{int(receive)}</receive>"
            f"<feedback>0</feedback><connections>00001</connections>"
            f"<triggers><trigger><var>{var}</var><condition>{condition}</condition></trigger></triggers>"
            f"<path>{_partial('CONSTANT', 'STRING', address)}</path><arguments>{''.join(args)}</arguments></osc>")


def _value(key: str, default: Any) -> str:
    d = f"{default:g}" if isinstance(default, float) else str(default)
    return (f"<value><key>{key}</key><locked>0</locked><lockedDefaultCurrent>0</lockedDefaultCurrent>"
            f"<default>{d}</default><defaultPull>0</defaultPull></value>")


def _node(kind: str, nid: str, props: Sequence[str], values: Sequence[str] = (), messages: Sequence[str] = (),
          children: Sequence[str] | None = None) -> str:
    out = f"<node ID='{nid}' type='{kind}'><properties>{''.join(props)}</properties>"
    out += f"<values>{''.join(values)}</values><messages>{''.join(messages)}</messages>"
    if children is not None:
        out += f"<children>{''.join(children)}</children>"
    return out + "</node>"


def _label(nid: str, text: str, frame: tuple[int, int, int, int], colour: tuple[float, ...],
           receive: str | None = None) -> str:
    msgs = [_osc(receive, [_partial("VALUE", "STRING", "text")], send=False, var="text")] if receive else []
    return _node("LABEL", nid, [_prop("s", "name", text), _prop("r", "frame", frame),
                                _prop("c", "color", (*colour, 1.0)), _prop("s", "text", text),
                                _prop("i", "textSize", 14), _prop("i", "textAlignH", 1)], messages=msgs)


def _control(p: Param, frame: tuple[int, int, int, int], colour: tuple[float, ...]) -> str | None:
    nid = _id(p.address)
    base = [_prop("s", "name", p.name.replace("/", "_")), _prop("r", "frame", frame),
            _prop("c", "color", (*colour, 1.0))]
    if p.kind in ("float", "int"):
        conv = "FLOAT" if p.kind == "float" else "INTEGER"
        default = (float(p.default) - p.lo) / (p.hi - p.lo) if p.hi != p.lo else 0.0
        return _node("FADER", nid, [*base, _prop("i", "orientation", 1), _prop("b", "centered", p.lo < 0 < p.hi)],
                     [_value("x", round(default, 6))], [_osc(p.address, [_partial("VALUE", conv, "x", p.lo, p.hi)])])
    if p.kind == "bool":
        return _node("BUTTON", nid, [*base, _prop("i", "buttonType", 1)], [_value("x", int(bool(p.default)))],
                     [_osc(p.address, [_partial("VALUE", "INTEGER", "x", 0, 1)])])
    if p.kind == "choice":
        n = len(p.choices)
        return _node("RADIO", nid, [*base, _prop("i", "steps", n), _prop("i", "orientation", 1)],
                     [_value("x", p.choices.index(p.default))],
                     [_osc(p.address, [_partial("VALUE", "INTEGER", "x", 0, n - 1)])])
    if p.kind == "trigger":
        hi = 1
        return _node("BUTTON", nid, [*base, _prop("i", "buttonType", 0)], [_value("x", 0)],
                     [_osc(p.address, [_partial("VALUE", "INTEGER", "x", 0, hi)], condition="RISE")])
    return None  # str parameters (model/select) need a keyboard: OSC from Max or a script


def _pages(registry: Registry) -> list[tuple[str, list[Param]]]:
    groups: dict[str, list[Param]] = {}
    for p in registry.values():
        if p.kind == "str" or p.name in ARG_TRIGGERS:
            continue
        groups.setdefault(p.group, []).append(p)
    pages = []
    for g, params in groups.items():
        chunks = [params[i:i + ROWS_PER_PAGE] for i in range(0, len(params), ROWS_PER_PAGE)]
        for i, chunk in enumerate(chunks):
            pages.append((g if len(chunks) == 1 else f"{g} {i + 1}", chunk))
    return pages


def _live_page(registry: Registry, colour: tuple[float, ...]) -> list[str]:
    """Presets, blackout, freeze, /sync and the status read-outs: what an operator needs on one screen."""
    morph = registry["preset/morph_s"]
    kids = []
    bw = (W - 16) // PRESET_BUTTONS
    for row, (name, address) in enumerate((("recall", "/preset/recall"), ("save", "/preset/save"))):
        y = 8 + row * 90
        kids.append(_label(_id("live", name, "label"), f"{address} N", (8, y, 300, 28), colour))
        for n in range(1, PRESET_BUTTONS + 1):
            frame = (8 + (n - 1) * bw, y + 30, bw - 6, 54)
            kids.append(_node("BUTTON", _id("live", name, n),
                              [_prop("s", "name", f"{name}_{n}"), _prop("r", "frame", frame),
                               _prop("c", "color", (*colour, 1.0)), _prop("i", "buttonType", 0)], [_value("x", 0)],
                              [_osc(address, [_partial("VALUE", "INTEGER", "x", 0, n)], receive=False,
                                    condition="RISE")]))
    y = 200
    for i, (text, address, kind) in enumerate((("prev", "/preset/prev", 0), ("next", "/preset/next", 0),
                                                ("blackout", "/show/blackout", 1), ("freeze", "/show/freeze", 1),
                                                ("sync", "/sync", 0))):
        frame = (8 + i * 200, y, 190, 60)
        args = [] if address == "/sync" else [_partial("VALUE", "INTEGER", "x", 0, 1)]
        kids.append(_node("BUTTON", _id("live", text), [_prop("s", "name", text), _prop("r", "frame", frame),
                                                        _prop("c", "color", (*colour, 1.0)),
                                                        _prop("i", "buttonType", kind)], [_value("x", 0)],
                          [_osc(address, args, receive=kind == 1, condition="RISE" if kind == 0 else "ANY")]))
    kids.append(_label(_id("live", "morph", "label"), morph.address + " [s]", (8, 280, 300, 40), colour))
    c = _control(morph, (316, 280, 690, 40), colour)
    assert c is not None
    kids.append(c.replace(_id(morph.address), _id("live", "morph")))
    status = [n for n in PROTOCOL_NODES if n["FULL_PATH"].startswith("/status/")]
    for i, n in enumerate(status):
        y = 340 + i * 48
        kids.append(_label(_id("live", n["FULL_PATH"], "name"), n["FULL_PATH"], (8, y, 300, 40), colour))
        kids.append(_label(_id("live", n["FULL_PATH"]), "-", (316, y, 300, 40), colour, receive=n["FULL_PATH"]))
    return kids


def touchosc_xml(registry: Registry) -> str:
    pages = []
    live_colour = (0.85, 0.25, 0.25)
    pages.append(_node("GROUP", _id("page", "live"), [_prop("s", "name", "live"), _prop("s", "tabLabel", "live"),
                                                      _prop("r", "frame", (0, TAB_H, W, H - TAB_H))],
                       children=_live_page(registry, live_colour)))
    for i, (title, params) in enumerate(_pages(registry)):
        colour = PALETTE[i % len(PALETTE)]
        kids = []
        for row, p in enumerate(params):
            y = 8 + row * ROW_H
            kids.append(_label(_id(p.address, "label"), p.address + (f" [{p.unit}]" if p.unit else ""),
                               (8, y, 300, ROW_H - 6), colour))
            c = _control(p, (316, y, W - 324, ROW_H - 6), colour)
            if c:
                kids.append(c)
        pages.append(_node("GROUP", _id("page", title), [_prop("s", "name", title), _prop("s", "tabLabel", title),
                                                         _prop("r", "frame", (0, TAB_H, W, H - TAB_H))], children=kids))
    pager = _node("PAGER", _id("pager"), [_prop("s", "name", "pages"), _prop("r", "frame", (0, 0, W, H)),
                                          _prop("i", "tabbarSize", TAB_H)], children=pages)
    root = _node("GROUP", _id("root"), [_prop("s", "name", "installation"), _prop("r", "frame", (0, 0, W, H))],
                 children=[pager])
    return f"<?xml version='1.0' encoding='UTF-8'?>\n<lexml version='3'>{root}</lexml>\n"


# ---- Max --------------------------------------------------------------------------------------------------

class _Patch:
    def __init__(self) -> None:
        self.boxes: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []

    def box(self, maxclass: str, rect: tuple[float, float, float, float], inlets: int, outlets: list[str],
            **extra: Any) -> str:
        bid = f"obj-{len(self.boxes) + 1}"
        b = {"id": bid, "maxclass": maxclass, "numinlets": inlets, "numoutlets": len(outlets),
             "patching_rect": list(rect)}
        if outlets:
            b["outlettype"] = outlets
        b.update(extra)
        self.boxes.append({"box": b})
        return bid

    def obj(self, text: str, rect: tuple[float, float, float, float], inlets: int = 1, outlets: int = 1) -> str:
        return self.box("newobj", rect, inlets, [""] * outlets, text=text)

    def comment(self, text: str, x: float, y: float, w: float = 220) -> str:
        return self.box("comment", (x, y, w, 20), 1, [], text=text)

    def connect(self, src: str, outlet: int, dst: str, inlet: int = 0) -> None:
        self.lines.append({"patchline": {"source": [src, outlet], "destination": [dst, inlet]}})


def max_patch(registry: Registry) -> dict[str, Any]:
    pt = _Patch()
    pt.comment(f"installation: generated by scripts/make_controller_layouts.py. Sends to port {OSC_PORT}, "
               f"feedback from {FEEDBACK_PORT} (run the show with --osc-feedback THIS_MACHINE:{FEEDBACK_PORT}).",
               15, 10, 900)
    send = pt.obj(f"udpsend 127.0.0.1 {OSC_PORT}", (15, 40, 170, 22), 1, 0)
    recv = pt.obj(f"udpreceive {FEEDBACK_PORT}", (200, 40, 130, 22), 1, 1)
    sync = pt.box("message", (345, 40, 50, 22), 2, [""], text="/sync")
    pt.connect(sync, 0, send)
    params = [p for p in registry.values() if p.kind != "trigger" and p.kind != "str"]
    status = [n["FULL_PATH"] for n in PROTOCOL_NODES if n["FULL_PATH"].startswith("/status/")]
    routed = [p.address for p in params] + status
    route = pt.obj("route " + " ".join(routed), (15, 75, 900, 22), 2, len(routed) + 1)
    pt.connect(recv, 0, route)

    col_w, row_h, top = 300, 32, 120
    per_col = 24
    out_index = {a: i for i, a in enumerate(routed)}
    i = 0

    def place() -> tuple[float, float]:
        nonlocal i
        x = 15 + (i // per_col) * col_w
        y = top + (i % per_col) * row_h
        i += 1
        return x, y

    for p in registry.values():
        x, y = place()
        pt.comment(p.address, x, y, 130)
        if p.kind == "trigger":
            if p.name in ARG_TRIGGERS:
                lo, hi = ARG_TRIGGERS[p.name]
                ctl = pt.box("number", (x + 135, y, 50, 22), 1, ["", "bang"], minimum=lo, maximum=hi,
                             parameter_enable=0)
                pre = pt.obj(f"prepend {p.address}", (x + 190, y, 100, 22))
                pt.connect(ctl, 0, pre)
                pt.connect(pre, 0, send)
            else:
                msg = pt.box("message", (x + 135, y, 150, 22), 2, [""], text=f"{p.address} 1")
                pt.connect(msg, 0, send)
            continue
        if p.kind == "str":
            msg = pt.box("message", (x + 135, y, 150, 22), 2, [""], text=f"{p.address} default")
            pt.connect(msg, 0, send)
            continue
        if p.kind == "float":
            ctl = pt.box("flonum", (x + 135, y, 60, 22), 1, ["", "bang"], format=6, minimum=p.lo, maximum=p.hi,
                         parameter_enable=0)
        elif p.kind == "int":
            ctl = pt.box("number", (x + 135, y, 60, 22), 1, ["", "bang"], minimum=p.lo, maximum=p.hi,
                         parameter_enable=0)
        elif p.kind == "bool":
            ctl = pt.box("toggle", (x + 135, y, 22, 22), 1, ["int"], parameter_enable=0)
        else:  # choice: the index goes out and comes back
            items: list[str] = []
            for c in p.choices:
                items += [c, ","]
            ctl = pt.box("umenu", (x + 135, y, 60, 22), 1, ["int", "", ""], items=items[:-1], parameter_enable=0)
        pre = pt.obj(f"prepend {p.address}", (x + 200, y, 95, 22))
        setter = pt.obj("prepend set", (x + 200, y + 14, 70, 22))
        pt.boxes[-1]["box"]["hidden"] = 1
        pt.connect(ctl, 0, pre)
        pt.connect(pre, 0, send)
        pt.connect(route, out_index[p.address], setter)
        pt.connect(setter, 0, ctl)  # 'set' shows the value without sending it back: no echo loop
    for address in status:
        x, y = place()
        pt.comment(address, x, y, 130)
        ctl = pt.box("flonum", (x + 135, y, 70, 22), 1, ["", "bang"], format=6, parameter_enable=0)
        pt.connect(route, out_index[address], ctl)
    return {"patcher": {"fileversion": 1,
                        "appversion": {"major": 8, "minor": 6, "revision": 0, "architecture": "x64", "modernui": 1},
                        "classnamespace": "box", "rect": [40.0, 80.0, 1240.0, 940.0], "openinpresentation": 0,
                        "default_fontsize": 12.0, "default_fontface": 0, "default_fontname": "Arial",
                        "gridonopen": 1, "gridsize": [15.0, 15.0], "boxes": pt.boxes, "lines": pt.lines,
                        "dependency_cache": [], "autosave": 0}}


# ---- main -------------------------------------------------------------------------------------------------

def generate(registry: Registry | None = None) -> dict[Path, bytes]:
    registry = registry or default_registry()
    return {TOSC: zlib.compress(touchosc_xml(registry).encode("utf-8"), 9),
            MAXPAT: (json.dumps(max_patch(registry), indent=1) + "\n").encode(),
            DOCS: osc_map_markdown(registry).encode()}


def _same(path: Path, data: bytes) -> bool:
    if not path.is_file():
        return False
    old = path.read_bytes()
    if path.suffix == ".tosc":  # compare the XML: another zlib build may pack the same text differently
        try:
            return zlib.decompress(old) == zlib.decompress(data)
        except zlib.error:
            return False
    return old == data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if any generated file is out of date")
    args = ap.parse_args(argv)
    files = generate()
    stale = [p for p, data in files.items() if not _same(p, data)]
    if args.check:
        for p in stale:
            print(f"out of date: {p.relative_to(REPO)} (run python scripts/make_controller_layouts.py)")
        return 1 if stale else 0
    for p, data in files.items():
        if p in stale:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            print(f"wrote {p.relative_to(REPO)}")
    if not stale:
        print("all up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
