"""control/web/session.py: one WebSocket client, served by `serve` on a real aiohttp server on loopback
(port 0) and spoken to by a real client, the session running against a small Host of its own (the
Protocol it is written against; the whole web server is tests/scenarios/test_web_oscquery.py's)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from installation.app import default_registry
from installation.control.osc.wire import build_dgram, walk_packet
from installation.control.web import oscquery, session
from installation.control.web.session import LISTENS_PER_S, Session, serve
from installation.core.params import Param

TIMEOUT_S = 10.0


class Room:
    """The Host a session runs in: the runtime's real parameters and OSCQuery tree; what reaches the
    intake, what is refused and who is dropped is kept to be looked at."""

    def __init__(self, read_only: frozenset[str] = frozenset()) -> None:
        registry = default_registry()
        self.by_address = {p.address: p for p in registry.values()}
        self.root = oscquery.tree(registry)
        self.read_only = read_only
        self.counters: Counter[str] = Counter()
        self.intaken: list[bytes] = []
        self.refusals: list[tuple[str, str]] = []
        self.synced: list[Session] = []
        self.dropped: list[str] = []

    def intake(self, data: bytes) -> None:
        self.intaken.append(data)

    def param(self, address: str) -> Param | None:
        return self.by_address.get(address)

    def write_refusal(self, name: str) -> str:
        return "read-only in this room" if name in self.read_only else ""

    def refused(self, reason: str, address: str, detail: str) -> None:
        self.counters[f"refused {reason}"] += 1
        self.refusals.append((reason, address))

    def addresses_under(self, path: str) -> list[str]:
        node = oscquery.find(self.root, path)
        return [] if node is None else [p for p, attrs in oscquery.shape(node).items() if "TYPE" in attrs]

    def send_current(self, s: Session) -> None:
        self.synced.append(s)
        for address in sorted(s.listening):
            s.offer(address, build_dgram(address, 1.5))

    def client_dropped(self, s: Session, why: str) -> None:
        self.dropped.append(why)


@asynccontextmanager
async def serving(room: Room, can_write: bool = True) -> AsyncIterator[tuple[str, list[Session]]]:
    """A server whose one route is `serve`; yields its ws:// address and the open sessions."""
    sessions: list[Session] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        return await serve(room, request, can_write, sessions.append, sessions.remove)

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"ws://{host}:{port}/", sessions
    finally:
        await runner.cleanup()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), TIMEOUT_S))


async def error_of(ws: aiohttp.ClientWebSocketResponse) -> str:
    doc = json.loads(await ws.receive_str())
    assert doc["COMMAND"] == "ERROR"
    return str(doc["DATA"])


async def until(cond: Callable[[], bool]) -> None:
    while not cond():
        await asyncio.sleep(0.01)


def values_in(dgram: bytes) -> list[tuple[str, list[Any]]]:
    return [(m.address, list(m.params)) for m in walk_packet(dgram)]


def test_a_client_hears_only_what_it_listens_to_and_the_newest_value_per_address() -> None:
    room = Room()

    async def test() -> None:
        async with serving(room) as (url, sessions), aiohttp.ClientSession() as http, \
                http.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": "/pre/blur"}))
            await ws.send_str(json.dumps({"COMMAND": "listen", "DATA": "/colour"}))  # a container: all of it
            await until(lambda: len(sessions) == 1 and len(sessions[0].listening) > 1)
            s = sessions[0]
            assert "/pre/blur" in s.listening and all(a.startswith(("/pre/blur", "/colour/")) for a in s.listening)
            s.offer("/mix/amount", build_dgram("/mix/amount", 0.5))  # not listened to: never sent
            s.offer("/pre/blur", build_dgram("/pre/blur", 2.0))
            s.offer("/pre/blur", build_dgram("/pre/blur", 3.0))  # before the writer ran: the newest wins
            assert values_in(await ws.receive_bytes()) == [("/pre/blur", [3.0])]
            await ws.send_str(json.dumps({"COMMAND": "IGNORE", "DATA": "/pre/blur"}))
            await until(lambda: "/pre/blur" not in s.listening)
            s.offer("/pre/blur", build_dgram("/pre/blur", 4.0))
            s.notice({"COMMAND": "PATH_CHANGED", "DATA": "/model/select"})
            assert json.loads(await ws.receive_str()) == {"COMMAND": "PATH_CHANGED", "DATA": "/model/select"}
            assert room.counters["pushed"] == 1 and room.intaken == [] and room.refusals == []
        assert sessions == []  # closed: on_close ran

    run(test)


def test_a_value_in_range_goes_to_the_intake_whole_and_a_bare_sync_answers_at_once() -> None:
    room = Room()

    async def test() -> None:
        async with serving(room) as (url, sessions), aiohttp.ClientSession() as http, \
                http.ws_connect(url) as ws:
            dgram = build_dgram("/pre/blur", 2.5)
            await ws.send_bytes(dgram)
            await until(lambda: room.intaken)
            assert room.intaken == [dgram] and room.counters["accepted"] == 1
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": "/pre/blur"}))
            await ws.send_bytes(build_dgram("/sync"))
            assert values_in(await ws.receive_bytes()) == [("/pre/blur", [1.5])]  # Room.send_current's
            assert room.synced == sessions and room.intaken == [dgram]  # the sync alone reached no intake

    run(test)


@pytest.mark.parametrize("dgram, reason, said", [
    (build_dgram("/pre/blur", 1e9), "out of range", "is outside"),
    (build_dgram("/pre/blur", "5"), "bad value", "/pre/blur"),
    (build_dgram("/pre/*", 1.0), "unknown address", "patterns are not taken over the web"),
    (build_dgram("/no/such", 1.0), "unknown address", "no such parameter"),
    (build_dgram("/mix/amount", 0.5), "write refused", "read-only in this room"),
    (b"\x00not osc at all", "malformed", "not an OSC packet"),
])
def test_a_refused_packet_changes_nothing_and_is_answered_and_counted(dgram: bytes, reason: str, said: str) -> None:
    room = Room(read_only=frozenset({"mix/amount"}))

    async def test() -> None:
        async with serving(room) as (url, _), aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await ws.send_bytes(dgram)
            assert said in await error_of(ws)
            assert room.intaken == [] and room.counters[f"refused {reason}"] == 1
            await ws.send_bytes(build_dgram("/pre/blur", 1.0))  # the session goes on
            await until(lambda: room.intaken)

    run(test)


def test_a_client_without_the_token_may_listen_but_not_write() -> None:
    room = Room()

    async def test() -> None:
        async with serving(room, can_write=False) as (url, sessions), aiohttp.ClientSession() as http, \
                http.ws_connect(url) as ws:
            await ws.send_bytes(build_dgram("/pre/blur", 1.0))
            assert "needs the show's token" in await error_of(ws)
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": "/pre/blur"}))
            await until(lambda: sessions and sessions[0].listening == {"/pre/blur"})
            assert room.intaken == [] and room.refusals == [("write refused", "/pre/blur")]

    run(test)


@pytest.mark.parametrize("text, said", [
    ("{not json", "not JSON"),
    ("[" * 20_000 + "]" * 20_000, "JSON nested too deep"),  # within the 64 KiB a message may have
    ('["LISTEN", "/pre/blur"]', 'expected a JSON object with "COMMAND"'),
    ('{"COMMAND": "DELETE", "DATA": "/pre/blur"}', "unknown COMMAND"),
    ('{"COMMAND": "LISTEN", "DATA": 42}', "needs an OSC address"),
    ('{"COMMAND": "LISTEN", "DATA": "/no/such"}', "no such OSC address"),
])
def test_a_bad_command_is_answered_and_the_session_goes_on(text: str, said: str) -> None:
    room = Room()

    async def test() -> None:
        async with serving(room) as (url, sessions), aiohttp.ClientSession() as http, \
                http.ws_connect(url) as ws:
            await ws.send_str(text)
            assert said in await error_of(ws)
            assert sum(n for k, n in room.counters.items() if k.startswith("refused ")) == 1
            await ws.send_str(json.dumps({"COMMAND": "LISTEN", "DATA": "/pre/blur"}))
            await until(lambda: sessions[0].listening == {"/pre/blur"})

    run(test)


def test_listens_beyond_the_limit_in_one_second_are_refused() -> None:
    room = Room()

    async def test() -> None:
        async with serving(room) as (url, _), aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            listen = json.dumps({"COMMAND": "LISTEN", "DATA": "/pre/blur"})
            for _ in range(2 * LISTENS_PER_S + 1):  # two seconds' worth at most split this: one goes over
                await ws.send_str(listen)
            await until(lambda: room.counters["refused too many listens"] >= 1)
            assert "at most" in await error_of(ws)

    run(test)


def test_a_client_that_stops_reading_is_dropped_and_the_server_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "SEND_TIMEOUT_S", 0.5)
    room = Room()

    async def test() -> None:
        async with serving(room) as (url, sessions):
            host, port = url.removeprefix("ws://").rstrip("/").split(":")
            # a raw client: the handshake, then it never reads again (its reader stops at 1 KiB)
            reader, writer = await asyncio.open_connection(host, int(port), limit=1024)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
            await until(lambda: len(sessions) == 1)
            s = sessions[0]
            big = "x" * 256 * 1024
            while not room.dropped:
                s.notice({"COMMAND": "PATH_CHANGED", "DATA": big})
                await asyncio.sleep(0.02)
            assert "stopped reading" in room.dropped[0] and s.closed and s.dropped
            writer.close()
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:  # others are served
                await ws.send_bytes(build_dgram("/pre/blur", 1.0))
                await until(lambda: room.intaken)

    run(test)
