"""The control wing's options: the live-control flags of `run` and `rehearse` (--osc-port, --osc-feedback,
--state, --osc-record, ...) read into the ControlOptions that RunOptions carries (the type is
show/options.py's: the show wing holds RunOptions and sits below control), and what `check` says about a
show's exposure: ports, interfaces, who may send, writes, keys."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from installation.control.access import describe_allow, parse_allow, parse_target
from installation.control.net import interface_addresses, is_loopback, is_wildcard
from installation.control.osc.wire import udp_on
from installation.core.errors import UserError
from installation.show.config import FEEDBACK_PORT, OSC_PORT, OSCQUERY_PORT, WEB_PORT
from installation.show.options import ControlOptions

log = logging.getLogger("installation.osc")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live control (OSC, presets, state)")
    g.add_argument("--osc-port", type=int, metavar="PORT", help=f"OSC in (default: the show's, {OSC_PORT}; 0: any)")
    g.add_argument("--osc-host", metavar="HOST",
                   help="address to listen on (default 0.0.0.0; 127.0.0.1: this machine only)")
    g.add_argument("--osc-feedback", action="append", default=[], metavar="HOST[:PORT]",
                   help=f"mirror every change to this controller (repeatable; port {FEEDBACK_PORT} by default)")
    g.add_argument("--osc-allow", action="append", default=[], metavar="IP[/NET]",
                   help="accept OSC and OSCQuery only from these senders, instead of the show's [osc] allow "
                        "(repeatable; 'any': anyone; default: this machine and private networks)")
    g.add_argument("--no-osc", action="store_true", help="no OSC in or out")
    g.add_argument("--oscquery-port", type=int, metavar="PORT", help=f"OSCQuery HTTP (default {OSCQUERY_PORT}; 0: off)")
    g.add_argument("--web-port", type=int, metavar="PORT",
                   help=f"the panel and status page in a browser (default: the show's [web] port, {WEB_PORT}; 0: off)")
    g.add_argument("--state", type=Path, metavar="DIR",
                   help="this show's state folder: presets, live values, recordings, logs")
    g.add_argument("--osc-record", nargs="?", const=True, type=Path, metavar="FILE",
                   help="record accepted OSC as JSON lines (default file: in the state folder)")
    g.add_argument("--osc-replay", type=Path, metavar="FILE",
                   help="play an OSC recording back (by frame with --lockstep)")
    # `run` faces a venue: kiosk keys and no OSC writes unless the show allows them (keys.py, osc/wire.py)
    p.set_defaults(venue=p.prog.split()[-1] == "run")


def control_options(args: argparse.Namespace) -> ControlOptions:
    """The flags above (and `--fresh`), checked before anything opens; a parser without them gets the
    defaults."""
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    feedback, allow = tuple(get("osc_feedback") or ()), tuple(get("osc_allow") or ())
    for t in feedback:
        parse_target(t)
    parse_allow(list(allow))
    for flag, port in (("--osc-port", get("osc_port")), ("--oscquery-port", get("oscquery_port")),
                       ("--web-port", get("web_port"))):
        if port is not None and not 0 <= port <= 65535:
            raise UserError(f"{flag} {port}", expected="a port 0..65535")
    replay = get("osc_replay")
    if replay is not None and not Path(replay).is_file():
        raise UserError("OSC recording not found", file=replay)
    return ControlOptions(osc=not get("no_osc", False), osc_host=get("osc_host"), osc_port=get("osc_port"),
                          osc_feedback=feedback, osc_allow=allow, oscquery_port=get("oscquery_port"),
                          web_port=get("web_port"), osc_record=get("osc_record"), osc_replay=replay,
                          fresh=bool(get("fresh", False)))


def exposure_lines(cfg: Any) -> list[str]:
    """The ports and interfaces a show opens, who may send, whether writes are allowed, what keys need:
    the exposure on one screen, for `installation check`."""
    c = cfg.osc
    if not c.enabled:
        return ["osc: off (no port opened, no feedback sent)"]
    if is_wildcard(c.host):
        ifs = interface_addresses()
        where = "every interface" + (f" ({', '.join(f'{n} {a}' for n, a in ifs)})" if ifs else "")
    elif is_loopback(c.host):
        where = "this machine only"
    else:
        where = f"the interface with address {c.host}"

    def port(n: int) -> str:
        return str(n) if n else "a free port"

    udp = udp_on(cfg)
    lines = [f"osc in: UDP {c.host}:{port(c.port)} on {where}" if udp else
             "osc in: UDP off" + (" ([osc] udp = false)" if c.udp is False else " ([web] token is set and [osc] udp "
                                  "is not: set udp = true to take UDP anyway)"),
             f"oscquery: HTTP {c.host}:{port(c.oscquery_port)}, the same interfaces" if c.oscquery_port
             else "oscquery: off",
             f"web (panel, status page): HTTP {c.host}:{cfg.web.port}, the same interfaces and senders"
             + (", changing values needs [web] token" if cfg.web.token else "") if cfg.web.port else "web: off",
             "feedback out: UDP to " + (", ".join(c.feedback) or "no target")
             + (", and to each sender" if c.feedback_to_sender else ""),
             f"who may send (OSC and OSCQuery): {describe_allow(parse_allow(c.allow))}"]
    if c.allow_writes is None:
        lines.append("writes over OSC: /preset/save allowed in `rehearse`, refused in `run`; /show/grab refused "
                     "(set [osc] allow_writes = true for both)")
    else:
        lines.append(f"writes over OSC (/preset/save, /show/grab): {'allowed' if c.allow_writes else 'refused'} "
                     f"([osc] allow_writes = {str(c.allow_writes).lower()})")
    lines.extend(token_lines(cfg, udp))
    mod = cfg.keys.modifier
    if not cfg.render.fullscreen:
        lines.append("keys: plain (the show plays in a window)")
    elif mod.strip().lower() == "none":
        lines.append('keys: plain, even fullscreen ([keys] modifier = "none")')
    else:
        lines.append(f"keys in a fullscreen `run`: only with {mod} (plain in `rehearse` and --window)")
    return lines


def token_lines(cfg: Any, udp: bool) -> list[str]:
    """What [web] token covers and what it doesn't, said where the artist checks a show."""
    if not cfg.web.token:
        return ["token: none ([web] token unset): every allowed sender may change values, over UDP OSC, the "
                "panel and OSCQuery alike"]
    lines = ["token covers: changing values from the panel and OSCQuery's WebSocket (and writes over HTTP)",
             "token does not cover: looking (the tree, the status page, the thumbnail stay open to allowed "
             "senders), MIDI and keys (they are on this machine)"]
    if udp:
        lines.append("! token does not cover UDP OSC, which is on ([osc] udp = true): any sender on the "
                     "allow-list changes everything without it; narrow [osc] allow to the controllers' "
                     "addresses, or set udp = false")
    else:
        lines.append("token: UDP OSC is off, so no value changes without it (but from MIDI and keys)")
    return lines
