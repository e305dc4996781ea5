"""One WebSocket client of the show (a panel, an OSCQuery client): what it asked to hear, what it sends,
what waits to go out to it. Runs on the web server's asyncio loop only.

In: text frames are OSCQuery commands as JSON ({"COMMAND": "LISTEN", "DATA": "/mix/amount"}, IGNORE);
binary frames are OSC packets setting values. A packet is judged here, strictly (a number outside its
range is refused, where OSC over UDP clamps it, since a client that knows the RANGE has no excuse), and
then handed whole to the same intake as a UDP datagram (control/osc/intake.py): coalescing, counting, the inbox,
the store. Values follow the one type rule of OSC (Param.check_wire, through judge): a string "5" or a T
for a float is refused. Anything refused gets
{"COMMAND": "ERROR", "DATA": why} on this socket, is counted, and changes nothing: JSON nested too deep
for the parser too. A client may send at most LISTENS_PER_S LISTEN / IGNORE a second (the tree has about
90 paths: a client listening to each method on its own fits). A client that floods is read more slowly
(at most READ_PER_S messages a second): the socket's own flow control holds it back, not the show.

Out: values as binary OSC messages, latest per address (a client that is slow gets fewer values, never a
queue), PATH_* notices and errors as JSON. A send that can't finish within SEND_TIMEOUT_S (the client
stopped reading) drops the client without waiting for it: others and the loop never wait on one client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from installation.control.osc.wire import PATTERN_CHARS, Malformed, judge, walk_packet
from installation.core.params import Param, ParamError

log = logging.getLogger("installation.web")

SEND_TIMEOUT_S = 2.0
HEARTBEAT_S = 5.0  # a ping this often; no pong within half of it and the client is gone
READ_PER_S = 400  # messages a second one client may send; more wait (TCP holds the sender back)
ERRORS_PER_S = 20  # error replies a second to one client; the rest are only counted
MAX_MESSAGE = 64 * 1024
LISTENS_PER_S = 200  # LISTEN / IGNORE one client may send a second; more are refused


class Refused(Exception):
    """Input refused: the message says why, `reason` is how it is counted."""

    def __init__(self, reason: str, address: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.address = address


class PerSecond:
    """How often something happened in this second of the monotonic clock."""

    def __init__(self) -> None:
        self.second, self.n = 0, 0

    def count(self) -> int:
        """Counts one more; returns how many came before it in this second."""
        now = int(time.monotonic())
        if now != self.second:
            self.second, self.n = now, 0
        self.n += 1
        return self.n - 1


class Host(Protocol):
    """What a session needs of the server it runs in (server.WebServer), on the server's loop."""

    counters: Counter[str]

    def intake(self, data: bytes) -> None: ...
    def param(self, address: str) -> Param | None: ...
    def write_refusal(self, name: str) -> str: ...
    def refused(self, reason: str, address: str, detail: str) -> None: ...
    def addresses_under(self, path: str) -> list[str]: ...
    def send_current(self, s: Session) -> None: ...
    def client_dropped(self, s: Session, why: str) -> None: ...


class Session:
    """One WebSocket connection: LISTEN / IGNORE, values in, values and notices out."""

    def __init__(self, server: Host, ws: web.WebSocketResponse, request: web.Request, can_write: bool) -> None:
        self.server = server
        self.ws = ws
        self.transport = request.transport
        self.peer = request.remote or "?"
        self.can_write = can_write
        self.listening: set[str] = set()
        self._listens = PerSecond()
        self.values: dict[str, bytes] = {}  # address -> the newest OSC message waiting to go out
        self.texts: deque[str] = deque(maxlen=256)
        self._wake = asyncio.Event()
        self._reads = PerSecond()
        self._errors = PerSecond()
        self.closed = False
        self.dropped = False

    # ---- out -------------------------------------------------------------------------------------------
    def offer(self, address: str, dgram: bytes) -> None:
        if address in self.listening:
            self.values[address] = dgram
            self._wake.set()

    def notice(self, doc: dict[str, Any]) -> None:
        self.texts.append(json.dumps(doc))
        self._wake.set()

    def error(self, message: str) -> None:
        if self._errors.count() < ERRORS_PER_S:
            self.notice({"COMMAND": "ERROR", "DATA": message})

    async def writer(self) -> None:
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self.texts:
                    await asyncio.wait_for(self.ws.send_str(self.texts.popleft()), SEND_TIMEOUT_S)
                values, self.values = self.values, {}
                for dgram in values.values():
                    await asyncio.wait_for(self.ws.send_bytes(dgram), SEND_TIMEOUT_S)
                self.server.counters["pushed"] += len(values)
        except TimeoutError:
            self.drop(f"it stopped reading (a send waited {SEND_TIMEOUT_S:g} s)")
        except (ConnectionError, RuntimeError) as e:  # aiohttp: RuntimeError when the socket is closing
            self.drop(str(e) or type(e).__name__)

    def drop(self, why: str) -> None:
        """Cut the connection at once: no close handshake waits on a client that doesn't read."""
        if self.closed:
            return
        self.closed = self.dropped = True
        self.server.client_dropped(self, why)
        if self.transport is not None:
            self.transport.abort()
        self._wake.set()

    # ---- in --------------------------------------------------------------------------------------------
    async def reader(self) -> None:
        async for msg in self.ws:
            await self._throttle()
            if self.closed:  # dropped, or the server stops: what the client sent before is not read
                break
            try:
                if msg.type == WSMsgType.TEXT:
                    self.command(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.packet(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    if isinstance(msg.data, TimeoutError):  # aiohttp's heartbeat: no pong came back
                        self.drop(f"it stopped reading (no answer to a ping within {HEARTBEAT_S / 2:g} s)")
                    break
            except Refused as e:
                self.server.refused(e.reason, e.address, str(e))
                self.error(str(e))

    async def _throttle(self) -> None:
        if self._reads.count() >= READ_PER_S:
            now = time.monotonic()
            await asyncio.sleep(int(now) + 1 - now)
            self._reads.count()  # the first of the next second

    def command(self, text: str) -> None:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise Refused("malformed", "(web)", f"not JSON ({e}); expected {{\"COMMAND\": \"LISTEN\", "
                                                "\"DATA\": \"/mix/amount\"}") from None
        except RecursionError:
            raise Refused("malformed", "(web)", "JSON nested too deep; expected {\"COMMAND\": \"LISTEN\", "
                                                "\"DATA\": \"/mix/amount\"}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("COMMAND"), str):
            raise Refused("malformed", "(web)", 'expected a JSON object with "COMMAND" and "DATA"')
        cmd, data = doc["COMMAND"].upper(), doc.get("DATA")
        if cmd not in ("LISTEN", "IGNORE"):
            raise Refused("unknown command", "(web)", f"unknown COMMAND {doc['COMMAND']!r}: LISTEN and IGNORE "
                                                      "are understood (values go as binary OSC)")
        if not isinstance(data, str) or not data.startswith("/"):
            raise Refused("malformed", "(web)", f"{cmd} needs an OSC address in DATA, like \"/mix/amount\"; "
                                                f"got {json.dumps(data)[:60]}")
        if self._listens.count() >= LISTENS_PER_S:
            raise Refused("too many listens", data[:80], f"{cmd} {data[:80]}: at most {LISTENS_PER_S} LISTEN / "
                                                         "IGNORE a second (\"/\" listens to everything)")
        addresses = self.server.addresses_under(data)
        if not addresses:
            raise Refused("unknown address", data[:80], f"{cmd} {data[:80]}: no such OSC address")
        if cmd == "LISTEN":
            self.listening.update(addresses)
        else:
            self.listening.difference_update(addresses)
            for a in addresses:
                self.values.pop(a, None)

    def packet(self, data: bytes) -> None:
        """An OSC packet setting values: judged whole, then handed to the show's OSC intake."""
        try:
            messages = list(walk_packet(data))
        except Malformed as e:
            raise Refused("malformed", "(web)", f"not an OSC packet: {e}") from None
        if not messages:
            return
        if not self.can_write:
            raise Refused("write refused", messages[0].address[:80],
                          "changing values needs the show's token: open the panel with ?token=...")
        syncs = 0
        for m in messages:
            if m.address == "/sync":
                syncs += 1
                continue
            self.check(m.address, list(m.params))
        if syncs == len(messages):  # a bare /sync: this client's listened values, at once
            self.server.send_current(self)
            return
        self.server.intake(data)
        self.server.counters["accepted"] += len(messages) - syncs

    def check(self, address: str, args: list[Any]) -> Param:
        if set(address) & PATTERN_CHARS:
            raise Refused("unknown address", address[:80],
                          f"{address[:80]}: address patterns are not taken over the web; name one parameter")
        p = self.server.param(address)
        if p is None:
            raise Refused("unknown address", address[:80], f"{address[:80]}: no such parameter")
        if p.kind in ("float", "int") and len(args) == 1 and isinstance(args[0], (int, float)) \
                and not isinstance(args[0], bool):
            assert p.lo is not None and p.hi is not None
            if not p.lo <= args[0] <= p.hi:
                raise Refused("out of range", p.address, f"{p.address}: {args[0]!r} is outside {p.lo:g}..{p.hi:g}")
        try:
            judge(p, args)
        except ParamError as e:
            raise Refused("bad value", p.address, str(e)) from None
        refusal = self.server.write_refusal(p.name)
        if refusal:
            raise Refused("write refused", p.address, f"{p.address}: {refusal}")
        return p


async def serve(server: Host, request: web.Request, can_write: bool,
                on_open: Callable[[Session], None], on_close: Callable[[Session], None]) -> web.WebSocketResponse:
    """The life of one WebSocket connection on the server's loop."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE, compress=False)
    await ws.prepare(request)
    session = Session(server, ws, request, can_write)
    on_open(session)
    writer = asyncio.ensure_future(session.writer())
    try:
        await session.reader()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        session.closed = True
        session._wake.set()
        writer.cancel()
        on_close(session)
        if not session.dropped and not ws.closed:
            try:
                await asyncio.wait_for(ws.close(), SEND_TIMEOUT_S)
            except (TimeoutError, ConnectionError):
                session.drop("no close handshake")
    return ws
