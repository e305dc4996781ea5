"""`installation osc-map`: the address space of every wing's parameters, or of a show's values."""

from __future__ import annotations

import argparse
from typing import Any

from installation.app import default_registry, load_show
from installation.control.addressmap import osc_map_markdown, osc_map_text


def cmd_osc_map(args: argparse.Namespace) -> int:
    registry = default_registry()
    if args.markdown:
        print(osc_map_markdown(registry), end="")
        return 0
    values = None
    if args.show is not None:
        cfg = load_show(args.show, registry)
        values = cfg.params
        print(f"# {cfg.name}: OSC in {cfg.osc.host}:{cfg.osc.port}, OSCQuery "
              f"{cfg.osc.oscquery_port or 'off'}, feedback {', '.join(cfg.osc.feedback) or 'none'}")
    print(osc_map_text(registry, values), end="")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("osc-map", help="print the OSC address space (address, type, range, default, unit)")
    p.add_argument("show", nargs="?", default=None, help="a show: its values as the defaults")
    p.add_argument("--markdown", action="store_true", help="as docs/osc.md (registry defaults)")
    p.set_defaults(func=cmd_osc_map)
