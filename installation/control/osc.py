"""Live control over OSC: the input server, feedback to controllers, /sync and /status, the address map.

The path of a parameter: OSC datagram -> this module's receiver thread (allow-list, parse, address ->
Param, coerce and clamp, count) -> a pending table, latest value per address -> ONE job in show.inbox ->
Show.update() on the main thread: ParamStore.set() -> store listeners (feedback, live state) -> the next
frame's snapshot. The receiver thread never touches the store or the show: it only judges messages and
hands them over, so no lock is held across a frame and nothing a controller sends can stall the loop.

Why BlockingOSCUDPServer on one thread (not ThreadingOSCUDPServer, not asyncio): ThreadingOSCUDPServer
starts a thread per datagram, so a fader's 0.50 then 0.51 can be applied in either order, and a flood of
thousands of datagrams a second becomes thousands of thread starts on a 2-core machine, stealing the
render loop's time. One thread handles datagrams in arrival order at a bounded cost each; the only work
it does is parsing and a dict update. asyncio would add an event loop for the same single thread.

Floods: per address only the newest value waits for the next frame (older ones count as 'coalesced'),
and at most one job per frame enters the inbox, so the main thread's work per frame is bounded by the
number of addresses, not by the message rate. Bundles: every message of a bundle lands in the same frame;
timetags are not waited for (python-osc's strict_timing=False, done here by parsing bundles ourselves).

Bad input (unknown address, wrong type or count, NaN/inf, malformed datagrams) is dropped, counted per
address and per reason, logged at most once a second per address (and at most 20 lines a second in all),
and shown in the HUD. Numbers out of range are clamped. Senders outside the allow-list and protected
writes the show doesn't allow are refused at the door (access.py): counted, named once, shown in the HUD.

Feedback: every change, from any source (OSC, keys, presets, replay, the API), is mirrored on the same
address to the feedback targets, at most once per address per frame, with bools as 0/1, choices as their
index and the rest as they are; ramps mirror their target at once. No echo loops: a value a controller
sent, stored unchanged, is not sent back to that controller; a clamped or coerced one is (its fader
must jump to what the show really uses); and a controller that echoes a value back changes nothing, so
the store, which ignores unchanged values, ends the exchange.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import math
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from installation.control.access import Gate, describe_allow, parse_allow
from installation.control.feedback import FeedbackTargets, Resolver
from installation.control.presets import ARG_TRIGGERS, PresetBank, slot_of
from installation.control.replay import GatedSource, OscRecorder, OscReplay, read_recording
from installation.core.errors import UserError
from installation.core.params import Param, ParamError, Registry
from installation.core.state import LiveState, add_log_file, remove_log_file, state_dir
from installation.show.keys import help_line

log = logging.getLogger("installation.osc")

DEFAULT_PORT = 9000
FEEDBACK_PORT = 9001
OSCQUERY_PORT = 9002
STATUS_EVERY_S = 1.0
SENDER_TTL_S = 600.0  # feedback_to_sender: forget a controller that has been quiet this long
MAX_SENDERS = 16
MAX_PENDING_TRIGGERS = 64  # per frame; more presses than this in one frame are a flood, not a person
PATTERN_CHARS = frozenset("*?[]{}")
_TAGS_OK = frozenset("ifsbhdtTFNrm[]")  # what python-osc parses; anything else it would log and skip


# ---- settings ---------------------------------------------------------------------------------------

def parse_target(text: str, default_port: int = FEEDBACK_PORT) -> tuple[str, int]:
    """'HOST:PORT' or 'HOST' (port 9001) as (host, port). Raises UserError."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        host, port = text.strip(), str(default_port)
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"feedback target {text!r}", expected="HOST:PORT, e.g. 192.168.1.20:9001")
    return host, int(port)


@dataclass
class OscSettings:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    feedback: list[tuple[str, int]] = field(default_factory=list)
    feedback_to_sender: bool = False
    allow: list[Any] | None = field(default_factory=lambda: parse_allow([]))  # None: anyone
    oscquery_port: int = OSCQUERY_PORT  # 0: off
    writes: bool = True  # /preset/save and the like
    grabs: bool = False  # /show/grab: pictures of visitors, only when the show says so

    @classmethod
    def resolve(cls, cfg: Any, opts: Any) -> OscSettings:
        """The show file's [osc] table, overridden by the command line (--osc-allow replaces [osc] allow)."""
        c = cfg.osc
        port = c.port if getattr(opts, "osc_port", None) is None else opts.osc_port
        qport = c.oscquery_port if getattr(opts, "oscquery_port", None) is None else opts.oscquery_port
        writes = c.allow_writes if c.allow_writes is not None else not getattr(opts, "venue", False)
        return cls(enabled=c.enabled and getattr(opts, "osc", True),
                   host=getattr(opts, "osc_host", None) or c.host, port=port,
                   feedback=[parse_target(t) for t in [*c.feedback, *getattr(opts, "osc_feedback", [])]],
                   feedback_to_sender=c.feedback_to_sender,
                   allow=parse_allow(getattr(opts, "osc_allow", None) or c.allow), oscquery_port=qport,
                   writes=writes, grabs=c.allow_writes is True)


# ---- parsing ------------------------------------------------------------------------------------------

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


# ---- counting bad input ---------------------------------------------------------------------------------

class InputCounters:
    """What came in and what was dropped, per reason and per address. Written by the receiver thread (and
    by replay on the main thread), read by the HUD: under a lock."""

    MAX_ADDRESSES = 256  # random addresses in a flood must not grow memory without bound
    LOGS_PER_S = 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.datagrams = 0
        self.messages = 0
        self.accepted = 0
        self.coalesced = 0
        self.reasons: Counter[str] = Counter()
        self.by_address: Counter[str] = Counter()
        self.last_reject = ""
        self._logged_at: dict[str, float] = {}
        self._log_window = (0.0, 0)  # (second, lines logged in it)
        self._unlogged = 0

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def add(self, name: str, n: int = 1) -> None:
        """Count one of datagrams, messages, accepted, coalesced."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def refused(self, reason: str, address: str) -> None:
        """Count a refusal that is logged elsewhere (once per sender, access.Gate)."""
        with self._lock:
            self.reasons[reason] += 1
            key = address if address in self.by_address or len(self.by_address) < self.MAX_ADDRESSES else "(other)"
            self.by_address[key] += 1
            self.last_reject = f"{address[:40]} {reason}"

    def reject(self, reason: str, address: str, detail: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.reasons[reason] += 1
            key = address if address in self.by_address or len(self.by_address) < self.MAX_ADDRESSES else "(other)"
            self.by_address[key] += 1
            self.last_reject = f"{address[:40]} {reason}"
            due = now - self._logged_at.get(key, -1e9) >= 1.0
            second, n = self._log_window
            if int(now) != second:
                second, n = int(now), 0
            if due and n < self.LOGS_PER_S:
                self._logged_at[key] = now
                if len(self._logged_at) > 4 * self.MAX_ADDRESSES:
                    self._logged_at.clear()
                self._log_window = (second, n + 1)
                unlogged, self._unlogged = self._unlogged, 0
            else:
                self._log_window = (second, n)
                self._unlogged += 1
                return
        more = f" (+{unlogged} similar not logged)" if unlogged else ""
        log.warning("OSC %s dropped: %s: %s%s", address[:80], reason, detail[:160], more)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"datagrams": self.datagrams, "messages": self.messages, "accepted": self.accepted,
                    "coalesced": self.coalesced, "rejected": sum(self.reasons.values()),
                    "reasons": dict(self.reasons), "by_address": dict(self.by_address.most_common(20)),
                    "last_reject": self.last_reject}


# ---- servers that wait for their port --------------------------------------------------------------------

class RetryingServer:
    """A socketserver server on its own thread; while its port is taken it says so and retries every
    `retry_s`, because exiting would loop a black screen under a restarting service.

    The first bind happens in the constructor, so the port (or the error) is known at once."""

    def __init__(self, what: str, port: int, make: Callable[[], socketserver.BaseServer], retry_s: float,
                 poll_s: float = 0.1) -> None:
        self.what = what
        self.port = port
        self.make = make
        self.retry_s = retry_s
        self.poll_s = poll_s
        self.server: socketserver.BaseServer | None = None
        self.error = ""
        self.attempts = 0
        self._stop = threading.Event()
        self._bind()
        self._thread = threading.Thread(target=self._run, name=f"{what}-server".replace(" ", "-"), daemon=True)
        self._thread.start()

    def _bind(self) -> bool:
        self.attempts += 1
        try:
            server = self.make()
        except OSError as e:
            first = not self.error
            if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                self.error = (f"{self.what} port {self.port} is taken by another program "
                              f"(another show running?); retrying every {self.retry_s:g} s")
            else:
                self.error = f"{self.what} port {self.port}: {e.strerror or e}; retrying every {self.retry_s:g} s"
            if first:
                log.error("%s", self.error)
            return False
        self.server = server
        self.port = server.server_address[1]
        if self.error:
            log.info("%s listening on port %d at last (after %d attempts)", self.what, self.port, self.attempts)
        self.error = ""
        return True

    def _run(self) -> None:
        while self.server is None:
            if self._stop.wait(self.retry_s):
                return
            self._bind()
        srv = self.server
        srv.timeout = self.poll_s
        while not self._stop.is_set():
            try:
                srv.handle_request()
            except Exception as e:  # a server thread that dies leaves the show deaf: never
                log.error("%s: %s: %s", self.what, type(e).__name__, e)

    @property
    def listening(self) -> bool:
        return self.server is not None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if self.server is not None:
            self.server.server_close()


class _OscUDPServer(BlockingOSCUDPServer):
    """python-osc's blocking server, with every datagram judged by the control (allow-list, malformed
    ones counted) instead of silently dropped."""

    max_packet_size = 65536  # a datagram is at most this; the default 8 KiB would cut big bundles

    def __init__(self, address: tuple[str, int], control: OscControl) -> None:
        self.control = control
        super().__init__(address, control.dispatcher)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.control.gate.allowed(client_address[0]):
            return True
        self.control.counters.add("datagrams")
        self.control.counters.refused("not allowed", f"(from {client_address[0]})")
        return False

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.control.receive(request[0], client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.control.counters.reject("malformed", "(error)", "the handler failed")


# ---- the control ------------------------------------------------------------------------------------------

@dataclass
class _Pending:
    param: Param
    value: Any
    args: list[Any]
    sender: tuple[str, int] | None
    altered: bool


class OscControl:
    """Live control of one show over OSC. A control (Show.controls): update(show) on the main thread
    sends feedback and status; the receiver thread only judges messages and hands them to show.inbox."""

    retry_s = 2.0

    def __init__(self, show: Any, settings: OscSettings, presets: PresetBank | None = None,
                 recorder: OscRecorder | None = None, replay_file: Path | None = None,
                 resolve: Resolver | None = None) -> None:
        self.show = show
        self.settings = settings
        self.registry: Registry = show.registry
        self.store = show.store
        self.presets = presets
        self.recorder = recorder
        self.counters = InputCounters()
        self.t_start = time.monotonic()
        self.log_handler: logging.Handler | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_triggers: list[_Pending] = []
        self._sync_requests: set[tuple[str, int] | None] = set()
        self._job_queued = False
        self._senders: dict[tuple[str, int], float] = {}
        self._out: dict[str, tuple[Any, tuple[str, int] | None]] = {}
        self._echo_skip: tuple[int, tuple[str, int]] | None = None
        self._t_status = 0.0
        self._new_targets: set[tuple[str, int]] = set()  # reachable since the last frame: send them everything
        self.sent = 0
        self.send_errors = 0
        self._send_error_logged: set[tuple[str, int]] = set()
        self._by_address = {p.address: p for p in self.registry.values()}
        self.gate = Gate(settings.allow, settings.writes, settings.grabs, getattr(show, "stats", None))

        # python-osc's Dispatcher maps addresses (and expands patterns); its call_handlers_for_packet is not
        # used, so no timetag is ever waited for (what strict_timing=False would give) and bundles are whole
        self.dispatcher = Dispatcher()
        for p in self.registry.values():
            self.dispatcher.map(p.address, self._on_param, p, needs_reply_address=True)
        self.dispatcher.map("/sync", self._on_sync, needs_reply_address=True)
        self.dispatcher.set_default_handler(self._on_unknown, needs_reply_address=True)

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.feedback = FeedbackTargets(settings.feedback if settings.enabled else [], self._on_new_target,
                                        resolve)

        self.store.subscribe(self._on_change)

        self.source_gate: GatedSource | None = None
        self.replay: OscReplay | None = None
        if replay_file is not None:
            fps = float(getattr(show.source, "fps", 0) or 30.0)
            self.replay = OscReplay(read_recording(replay_file), self._apply_replayed, show.opts.lockstep, fps)
        if (recorder is not None or self.replay is not None) and show.source is not None:
            self.source_gate = GatedSource(show.source, self._on_frame,
                                           self.replay.close if self.replay else None)
            show.source = self.source_gate
        if self.replay is not None and self.replay.lockstep:
            # ramps and smoothing run on the frame clock, so a rehearsal glides the same way every time
            replay = self.replay
            self.store._clock = lambda: replay.frame_clock

        self.server: RetryingServer | None = None
        self.query: RetryingServer | None = None
        self._zeroconf: Any = None
        if settings.enabled:
            self.server = RetryingServer("OSC", settings.port,
                                         lambda: _OscUDPServer((settings.host, settings.port), self), self.retry_s)
            if settings.oscquery_port:
                from installation.control.oscquery import OscQueryHTTPServer, advertise

                name = show.cfg.name
                self.query = RetryingServer(
                    "OSCQuery", settings.oscquery_port,
                    lambda: OscQueryHTTPServer((settings.host, settings.oscquery_port), self.store, name,
                                               settings.host, self.port, self._http_allowed), self.retry_s)
                if self.query.listening and self.server.listening:
                    self._zeroconf = advertise(name, self.query.port, self.port, settings.host)

    @property
    def port(self) -> int:
        return self.server.port if self.server else 0

    @property
    def targets(self) -> list[tuple[str, int]]:
        """The feedback targets that can be reached now (resolved, not held after a failure)."""
        return self.feedback.addresses()

    # ---- the receiver threads -------------------------------------------------------------------
    def _http_allowed(self, host: str) -> bool:
        if self.gate.allowed(host, "OSCQuery"):
            return True
        self.counters.refused("not allowed", f"(OSCQuery from {host})")
        return False

    def _on_new_target(self, addr: tuple[str, int]) -> None:
        with self._lock:
            self._new_targets.add(addr)

    def receive(self, data: bytes, client: tuple[str, int] | None) -> None:
        """One datagram: parsed whole first, so a bundle is applied whole or not at all."""
        self.counters.add("datagrams")
        try:
            messages = list(walk_packet(data))
        except Malformed as e:
            self.counters.reject("malformed", "(malformed)", str(e))
            return
        if client is not None and self.settings.feedback_to_sender:
            with self._lock:
                self._senders[client] = time.monotonic()
        for msg in messages:
            self.counters.add("messages")
            address = msg.address
            if not set(address) & PATTERN_CHARS:
                p = self._by_address.get(address)
                if p is not None:
                    self._on_param(client, address, [p], *msg.params)
                elif address == "/sync":
                    self._on_sync(client, address, *msg.params)
                else:
                    self._on_unknown(client, address, *msg.params)
                continue
            # an OSC address pattern: python-osc's Dispatcher expands it; it may only set values, never
            # fire a trigger (a stray '/*/*' must not save over a preset)
            matched = 0
            for h in self.dispatcher.handlers_for_address(address):
                if h.args and h.args[0].kind != "trigger":
                    h.invoke(client, msg)
                    matched += 1
            if not matched:
                self.counters.reject("unknown address", address, "the pattern matches no parameter")

    def _on_unknown(self, client: Any, address: str, *args: Any) -> None:
        self.counters.reject("unknown address", address, "no such parameter (see `installation osc-map`)")

    def _on_sync(self, client: Any, address: str, *args: Any) -> None:
        with self._lock:  # a flood of /sync must not become a flood of jobs: one per frame, per requester
            if len(self._sync_requests) >= MAX_SENDERS:
                self.counters.reject("flood", address, "too many /sync requests in one frame")
                return
            self._sync_requests.add(client)
            queue_job = not self._job_queued
            self._job_queued = True
        self.counters.add("accepted")
        if queue_job:
            self.show.inbox.put(self._apply_pending)

    def _on_param(self, client: Any, address: str, fixed: list[Param], *args: Any) -> None:
        p = fixed[0]
        try:
            judged = judge(p, args)
        except ParamError as e:
            self.counters.reject("bad value", p.address, str(e))
            return
        if judged is None:
            return  # a trigger's release
        refusal = self.gate.write_refusal(p.name)
        if refusal:
            self.gate.count_write_refused()
            self.counters.reject("write refused", p.address, refusal)
            return
        value, altered = judged
        item = _Pending(p, value, list(args), client, altered)
        with self._lock:
            if p.kind == "trigger":
                if len(self._pending_triggers) >= MAX_PENDING_TRIGGERS:
                    self.counters.reject("flood", p.address, "too many triggers in one frame")
                    return
                self._pending_triggers.append(item)
            else:
                if p.name in self._pending:
                    self.counters.add("coalesced")
                self._pending[p.name] = item
            queue_job = not self._job_queued
            self._job_queued = True
        self.counters.add("accepted")
        if queue_job:
            self.show.inbox.put(self._apply_pending)

    # ---- the main thread ------------------------------------------------------------------------
    def _apply_pending(self, show: Any) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            triggers, self._pending_triggers = self._pending_triggers, []
            syncs, self._sync_requests = self._sync_requests, set()
            self._job_queued = False
        for item in [*pending.values(), *triggers]:
            self._set(item, "osc")
        if syncs:
            self._sync(syncs)

    def _set(self, item: _Pending, source: str) -> None:
        p = item.param
        if item.sender is not None and not item.altered:
            self._echo_skip = (threading.get_ident(), item.sender)
        try:
            self.store.set(p.name, item.value, source=source)
        except ParamError as e:  # judged already; only a parameter that changed under us gets here
            self.counters.reject("bad value", p.address, str(e))
            return
        finally:
            self._echo_skip = None
        if self.recorder is not None and source == "osc":
            self.recorder.write(self.source_gate.taken + 1 if self.source_gate else -1, p.address, item.args)

    def _apply_replayed(self, address: str, args: list[Any]) -> None:
        p = self._by_address.get(address)
        if p is None:
            self.counters.reject("unknown address", address, "in the replayed recording")
            return
        try:
            judged = judge(p, args)
        except ParamError as e:
            self.counters.reject("bad value", address, f"in the replayed recording: {e}")
            return
        refusal = self.gate.write_refusal(p.name) if judged is not None else ""
        if refusal:
            self.gate.count_write_refused()
            self.counters.reject("write refused", address, f"in the replayed recording: {refusal}")
        elif judged is not None:
            self._set(_Pending(p, judged[0], args, None, True), "replay")

    def _on_frame(self, index: int) -> None:
        """Inference thread, before frame `index` is processed."""
        if self.replay is not None and self.replay.lockstep:
            self.replay.before_frame(index, self.show.inbox, self.store)

    def _on_change(self, p: Param, value: Any, source: str) -> None:
        """A store listener: any thread. Only notes the change; update() sends it."""
        if p.kind == "trigger":
            return
        skip = self._echo_skip
        exclude = skip[1] if skip is not None and skip[0] == threading.get_ident() else None
        with self._lock:
            prev = self._out.get(p.address)
            if prev is not None and prev[1] != exclude:
                exclude = None
            self._out[p.address] = (out_value(p, value), exclude)

    def feedback_targets(self) -> list[tuple[str, int]]:
        if not self.settings.feedback_to_sender:
            return list(self.targets)
        now = time.monotonic()
        with self._lock:
            for s, t in list(self._senders.items()):
                if now - t > SENDER_TTL_S:
                    del self._senders[s]
            recent = sorted(self._senders, key=self._senders.__getitem__)[-MAX_SENDERS:]
        return list(dict.fromkeys([*self.targets, *recent]))

    def _send(self, dgram: bytes, target: tuple[str, int]) -> bool:
        try:
            self._sock.sendto(dgram, target)
            self.sent += 1
            if self.feedback.has_errors:
                self.feedback.sent(target)
            return True
        except OSError as e:  # a controller that went away, a full buffer: never the show's problem
            self.send_errors += 1
            if target in self.feedback.addresses():
                self.feedback.failed(target, e)  # held with back-off, its name looked up again
            elif target not in self._send_error_logged:
                self._send_error_logged.add(target)
                log.warning("OSC feedback to %s:%d failed: %s", target[0], target[1], e)
            return False

    def _sync(self, requesters: set[tuple[str, int] | None]) -> None:
        """Every value to the feedback targets and to whoever asked."""
        targets = self.feedback_targets()
        targets += [r for r in requesters if r is not None and r not in targets]
        self._send_values(self.store.targets(), targets)

    def _send_values(self, values: dict[str, Any], targets: list[tuple[str, int]]) -> None:
        for name, v in values.items():
            p = self.registry[name]
            if p.kind == "trigger":
                continue
            dgram = build_dgram(p.address, out_value(p, v))
            for t in targets:
                self._send(dgram, t)

    def update(self, show: Any) -> None:
        now = time.monotonic()
        if self.replay is not None:
            self.replay.update(now)
        if self.recorder is not None:
            self.recorder.update(now)
        if not self.settings.enabled:
            return
        targets = self.feedback_targets()
        with self._lock:
            new, self._new_targets = self._new_targets, set()
        if new:  # a controller present at start, or one that came late or moved: every value, at once
            self._send_values(self.store.targets(), [t for t in new if t in targets])
        with self._lock:
            out, self._out = self._out, {}
        for address, (v, exclude) in out.items():
            dgram = build_dgram(address, v)
            for t in targets:
                if t != exclude:
                    self._send(dgram, t)
        if now - self._t_status >= STATUS_EVERY_S and targets:
            self._t_status = now
            for dgram in self.status_messages(show):
                for t in targets:
                    self._send(dgram, t)

    def status_messages(self, show: Any) -> list[bytes]:
        from installation.show.health import counters

        h = counters(show)  # the same figures as the stats JSON, the heartbeat file and the log
        lat = show.stats.latency_p50()
        out = [build_dgram("/status/fps", float(h["fps"])),
               build_dgram("/status/dropped", int(h["dropped"])),
               build_dgram("/status/errors", int(h["errors"] + self.counters.rejected)),
               build_dgram("/status/heartbeat", int(time.monotonic() - self.t_start)),
               build_dgram("/status/frames", int(h["frames_presented"])),
               build_dgram("/status/reconnects", int(h["reconnects"])),
               build_dgram("/status/memory_mb", float(h["rss_mb"])),
               build_dgram("/status/preset", int(self.presets.current if self.presets else 0))]
        if math.isfinite(lat):
            out.insert(1, build_dgram("/status/latency_ms", float(lat)))
        return out

    def hud(self, show: Any) -> list[str]:
        lines = []
        if self.server is not None:
            c = self.counters.snapshot()
            head = f"osc :{self.port}  in {c['accepted']}"
            if c["coalesced"]:
                head += f"  coalesced {c['coalesced']}"
            if c["rejected"]:
                why = ", ".join(f"{k} {v}" for k, v in sorted(c["reasons"].items()))
                head += f"  dropped {c['rejected']} ({why})"
            lines.append(head)
            if c["last_reject"]:
                lines.append(f"osc last dropped: {c['last_reject']}")
            lines.extend(self.gate.hud())
            lines.extend(self.feedback.hud())
            for srv in (self.server, self.query):
                if srv is not None and srv.error:
                    lines.append("! " + srv.error)
        if self.replay is not None:
            mode = "frames" if self.replay.lockstep else "time"
            lines.append(f"osc replay {self.replay.next}/{len(self.replay.messages)} by {mode}")
        if self.recorder is not None:
            lines.append(f"osc recording {self.recorder.count} msgs -> {self.recorder.path.name}")
        return lines

    def summary(self) -> dict[str, Any]:
        return self.counters.snapshot() | {"port": self.port, "sent": self.sent, "send_errors": self.send_errors,
                                           "refused_senders": dict(self.gate.refused),
                                           "feedback": self.feedback.summary()}

    def close(self) -> None:
        self.feedback.close()
        if self.replay is not None:
            self.replay.close()
        for srv in (self.server, self.query):
            if srv is not None:
                srv.close()
        if self._zeroconf is not None:
            try:
                self._zeroconf.unregister_all_services()
                self._zeroconf.close()
            except Exception as e:
                log.debug("zeroconf close: %s", e)
        self._sock.close()
        if self.recorder is not None:
            self.recorder.close()
        remove_log_file(self.log_handler)


# ---- wiring into a show -------------------------------------------------------------------------------

def attach_controls(show: Any) -> None:
    """Called by Show.build() once the store holds the show file's values and the source is open: restores
    the last live values, then attaches live state, presets and OSC as controls."""
    cfg, opts = show.cfg, show.opts
    settings = OscSettings.resolve(cfg, opts)
    folder = state_dir(cfg.name, getattr(opts, "state", None))
    replay_file = getattr(opts, "osc_replay", None)
    handler = add_log_file(folder / "logs") if folder is not None else None
    keeper: LiveState | None = None
    if folder is not None:
        keeper = LiveState(folder, show.store, cfg.name)
        if cfg.state.restore and replay_file is None:
            keeper.restore(fresh=getattr(opts, "fresh", False))
            for name, v in opts.extra_params.items():  # --set still wins over what was left last time
                show.store.set(name, v, source="config", ramp_s=0.0)
    presets = PresetBank(folder / "presets" if folder is not None else None, show.store, cfg.name,
                         declared={int(k): v for k, v in cfg.presets.items()})
    recorder = None
    record = getattr(opts, "osc_record", None)
    if record is True:
        if folder is None:
            raise UserError("--osc-record without a FILE needs a state folder", expected="--osc-record FILE")
        record = folder / "recordings" / f"osc-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    if record:
        recorder = OscRecorder(Path(record))
        log.info("recording OSC to %s", record)
    control = OscControl(show, settings, presets, recorder, replay_file)
    control.log_handler = handler
    show.controls.extend(c for c in (keeper, presets, control) if c is not None)
    show.hud_lines.extend([control.hud, presets.hud, help_line])
    from installation.control.midi import attach_midi

    attach_midi(show, folder)  # [midi]: the same path into the store, learned bindings in the state folder
    show.snapshot = show.store.publish()
    if control.server is not None and control.server.listening:
        feedback = ", ".join(f"{h}:{p}" for h, p in settings.feedback)
        log.info("OSC in on %s:%d%s; who may send: %s; writes over OSC %s", settings.host, control.port,
                 f", feedback to {feedback}" if feedback else "", describe_allow(settings.allow),
                 "allowed" if settings.writes else "refused")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live control (OSC, presets, state)")
    g.add_argument("--osc-port", type=int, metavar="PORT", help=f"OSC in (default: the show's, {DEFAULT_PORT}; 0: any)")
    g.add_argument("--osc-host", metavar="HOST",
                   help="address to listen on (default 0.0.0.0; 127.0.0.1: this machine only)")
    g.add_argument("--osc-feedback", action="append", default=[], metavar="HOST[:PORT]",
                   help=f"mirror every change to this controller (repeatable; port {FEEDBACK_PORT} by default)")
    g.add_argument("--osc-allow", action="append", default=[], metavar="IP[/NET]",
                   help="accept OSC and OSCQuery only from these senders, instead of the show's [osc] allow "
                        "(repeatable; 'any': anyone; default: this machine and private networks)")
    g.add_argument("--no-osc", action="store_true", help="no OSC in or out")
    g.add_argument("--oscquery-port", type=int, metavar="PORT", help=f"OSCQuery HTTP (default {OSCQUERY_PORT}; 0: off)")
    g.add_argument("--state", type=Path, metavar="DIR",
                   help="this show's state folder: presets, live values, recordings, logs")
    g.add_argument("--osc-record", nargs="?", const=True, type=Path, metavar="FILE",
                   help="record accepted OSC as JSON lines (default file: in the state folder)")
    g.add_argument("--osc-replay", type=Path, metavar="FILE",
                   help="play an OSC recording back (by frame with --lockstep)")
    # `run` faces a venue: kiosk keys and no OSC writes unless the show allows them (keys.py, access.py)
    p.set_defaults(venue=p.prog.split()[-1] == "run")


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """RunOptions fields from the flags above, checked before anything opens (a parser without these flags
    gets the defaults)."""
    get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    feedback, allow = list(get("osc_feedback") or []), list(get("osc_allow") or [])
    for t in feedback:
        parse_target(t)
    parse_allow(allow)
    for flag, port in (("--osc-port", get("osc_port")), ("--oscquery-port", get("oscquery_port"))):
        if port is not None and not 0 <= port <= 65535:
            raise UserError(f"{flag} {port}", expected="a port 0..65535")
    replay = get("osc_replay")
    if replay is not None and not Path(replay).is_file():
        raise UserError("OSC recording not found", file=replay)
    return {"state": get("state"), "osc": not get("no_osc", False), "osc_host": get("osc_host"),
            "osc_port": get("osc_port"), "osc_feedback": feedback, "osc_allow": allow,
            "oscquery_port": get("oscquery_port"), "osc_record": get("osc_record"), "osc_replay": replay,
            "venue": bool(get("venue", False))}


# ---- what each port is (installation check) -------------------------------------------------------------

def interface_addresses() -> list[tuple[str, str]]:
    """(interface, IPv4 address) pairs of this machine: what listening on 0.0.0.0 exposes."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:  # SIOCGIFADDR: the standard library has no other way to an interface's address
                data = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on it
            out.append((name, socket.inet_ntoa(data[20:24])))
    return out


def exposure_lines(cfg: Any) -> list[str]:
    """The ports and interfaces a show opens, who may send, whether writes are allowed, what keys need:
    the exposure on one screen, for `installation check`."""
    c = cfg.osc
    if not c.enabled:
        return ["osc: off (no port opened, no feedback sent)"]
    if c.host in ("", "0.0.0.0", "::"):
        ifs = interface_addresses()
        where = "every interface" + (f" ({', '.join(f'{n} {a}' for n, a in ifs)})" if ifs else "")
    elif c.host.startswith("127.") or c.host in ("localhost", "::1"):
        where = "this machine only"
    else:
        where = f"the interface with address {c.host}"

    def port(n: int) -> str:
        return str(n) if n else "a free port"

    lines = [f"osc in: UDP {c.host}:{port(c.port)} on {where}",
             f"oscquery: HTTP {c.host}:{port(c.oscquery_port)}, the same interfaces" if c.oscquery_port
             else "oscquery: off",
             "feedback out: UDP to " + (", ".join(c.feedback) or "no target")
             + (", and to each sender" if c.feedback_to_sender else ""),
             f"who may send (OSC and OSCQuery): {describe_allow(parse_allow(c.allow))}"]
    if c.allow_writes is None:
        lines.append("writes over OSC: /preset/save allowed in `rehearse`, refused in `run`; /show/grab refused "
                     "(set [osc] allow_writes = true for both)")
    else:
        lines.append(f"writes over OSC (/preset/save, /show/grab): {'allowed' if c.allow_writes else 'refused'} "
                     f"([osc] allow_writes = {str(c.allow_writes).lower()})")
    mod = cfg.keys.modifier
    if not cfg.render.fullscreen:
        lines.append("keys: plain (the show plays in a window)")
    elif mod.strip().lower() == "none":
        lines.append('keys: plain, even fullscreen ([keys] modifier = "none")')
    else:
        lines.append(f"keys in a fullscreen `run`: only with {mod} (plain in `rehearse` and --window)")
    return lines
