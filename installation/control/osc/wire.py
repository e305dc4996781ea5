"""OSC on the wire: the default ports, the [osc] settings as resolved for a run, datagrams walked
(bundles flattened, no timetag waited for), arguments judged against a parameter, values built for
feedback. No sockets, no threads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.control.access import parse_allow, parse_target
from installation.control.osc.patterns import PATTERN_CHARS as PATTERN_CHARS
from installation.control.presets import ARG_TRIGGERS, slot_of
from installation.core.params import Param, ParamError
from installation.inference.models import is_model_name
from installation.show.config import OSC_PORT, OSCQUERY_PORT
from installation.show.options import RunOptions

log = logging.getLogger("installation.osc")


STATUS_EVERY_S = 1.0


SENDER_TTL_S = 600.0  # feedback_to_sender: forget a controller that has been quiet this long


MAX_SENDERS = 16


MAX_PENDING_TRIGGERS = 64  # per frame; more presses than this in one frame are a flood, not a person


_TAGS_OK = frozenset("ifsbhdtTFNrm[]")  # what python-osc parses; anything else it would log and skip


@dataclass
class OscSettings:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = OSC_PORT
    feedback: list[tuple[str, int]] = field(default_factory=list)
    feedback_to_sender: bool = False
    allow: list[Any] | None = field(default_factory=lambda: parse_allow([]))  # None: anyone
    oscquery_port: int = OSCQUERY_PORT  # 0: off
    writes: bool = True  # /preset/save and the like
    grabs: bool = False  # /show/grab: pictures of visitors, only when the show says so
    udp: bool = True  # OSC in over UDP; off, values change only over the web's channels (which carry a token)

    @classmethod
    def resolve(cls, cfg: Any, opts: RunOptions) -> OscSettings:
        """The show file's [osc] table, overridden by the command line (--osc-allow replaces [osc] allow)."""
        c, o = cfg.osc, opts.control
        writes = c.allow_writes if c.allow_writes is not None else not opts.venue
        return cls(enabled=c.enabled and o.osc, host=o.osc_host or c.host,
                   port=c.port if o.osc_port is None else o.osc_port,
                   feedback=[parse_target(t) for t in [*c.feedback, *o.osc_feedback]],
                   feedback_to_sender=c.feedback_to_sender, allow=parse_allow(list(o.osc_allow) or c.allow),
                   oscquery_port=c.oscquery_port if o.oscquery_port is None else o.oscquery_port,
                   writes=writes, grabs=c.allow_writes is True, udp=udp_on(cfg))


def udp_on(cfg: Any) -> bool:
    """[osc] udp, or where unset: on unless [web] token is set. A datagram can't carry the token, and its
    sender's address is all there is to judge it by, so a show that asks for a token gets no UDP unless it
    says so (docs/security.md)."""
    return bool(cfg.osc.udp) if cfg.osc.udp is not None else not cfg.web.token


class Malformed(Exception):
    """A datagram that is not OSC we can read."""


def _type_tag(data: bytes) -> str:
    end = data.find(b"\0")
    if end < 0:
        raise Malformed("address not terminated")
    start = (end // 4 + 1) * 4
    if start >= len(data):
        return ""  # no type tag at all: a message without arguments
    if data[start:start + 1] != b",":
        raise Malformed("type tag missing")
    stop = data.find(b"\0", start)
    if stop < 0:
        raise Malformed("type tag not terminated")
    try:
        return data[start + 1:stop].decode("ascii")
    except UnicodeDecodeError:
        raise Malformed("type tag not ASCII") from None


def walk_packet(data: bytes, depth: int = 0) -> Iterator[OscMessage]:
    """The messages of a datagram, bundles flattened, timetags ignored. Raises Malformed."""
    if data.startswith(b"#bundle\0"):
        if depth >= 8:
            raise Malformed("bundles nested too deep")
        if len(data) < 16:
            raise Malformed("bundle without a timetag")
        i = 16
        while i < len(data):
            if i + 4 > len(data):
                raise Malformed("bundle element without a size")
            size = int.from_bytes(data[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or size % 4 or i + size > len(data):
                raise Malformed("bundle element size out of bounds")
            yield from walk_packet(data[i:i + size], depth + 1)
            i += size
        return
    if not data.startswith(b"/"):
        raise Malformed("neither an OSC message nor a bundle")
    tag = _type_tag(data)
    if not set(tag) <= _TAGS_OK:
        raise Malformed(f"unsupported type tag ,{tag[:16]}")
    try:
        msg = OscMessage(data)
        msg.params  # noqa: B018 - parse now, in the try, not later
    except Exception as e:  # python-osc raises several kinds on garbage; all mean the same here
        raise Malformed(f"{type(e).__name__}: {e}"[:120]) from None
    yield msg


def judge(p: Param, args: list[Any] | tuple[Any, ...]) -> tuple[Any, bool] | None:
    """What a message means for a parameter: (value to set, altered) or None for a trigger's release.

    Triggers fire on non-zero (a bare message fires too) and carry their raw argument; the ones with a slot
    argument are checked here so a bad slot is rejected at the door. Raises ParamError."""
    for a in args[:1]:
        p.check_wire(a)
    if p.kind == "trigger":
        if not args:
            return 1, False
        if len(args) != 1:
            raise ParamError(f"{p.address} takes at most one value, got {len(args)}")
        if not p.coerce(args[0]):
            return None
        if p.name in ARG_TRIGGERS:
            slot_of(p.name, args[0])
        return args[0], False
    if not args:
        raise ParamError(f"{p.address} needs a value")
    v = p.coerce(list(args))
    if p.name == "model/select" and v and not is_model_name(v):
        raise ParamError(f"{p.address} takes a model's name from the show's model folders, never a path")
    return v, bool(args[0] != v)  # e.g. clamped: the sender's control must jump to what is used


def out_value(p: Param, v: Any) -> Any:
    """A value as it goes out: what a fader, toggle or radio control expects back."""
    if p.kind == "bool":
        return int(bool(v))
    if p.kind == "choice":
        return p.choices.index(v) if v in p.choices else 0
    if p.kind == "int":
        return int(v)
    if p.kind == "float":
        return float(v)
    return str(v)


def build_dgram(address: str, *args: Any) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram
