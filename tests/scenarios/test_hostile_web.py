"""The web server on a hostile network (issue 23), each attack against the real show (`installation rehearse
--headless` as a subprocess, free ports, loopback only, bounded in count and time): connection floods,
half-sent requests, a sender outside the allow-list, pages from other origins, a Host that is not this
machine (DNS rebinding), JSON nested too deep, values of the wrong type, LISTEN floods, and a real browser
on another origin. Each is judged by what comes out: frames keep being presented, /api/status answers,
no preset file appears in the state folder, the refusal is counted, and no traceback reaches the log.

Many senders come from one machine here: every 127.0.0.x is this machine's loopback (source_address)."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from installation.control.osc.wire import build_dgram
from installation.control.web.guard import KEEPALIVE_S
from installation.control.web.server import MAX_WEBSOCKETS
from tests.scenarios.conftest import free_tcp_port
from tests.scenarios.test_web_oscquery import closed_at_accept, playing, recv_text
from tests.scenarios.test_web_panel import browser  # noqa: F401  (the fixture: Debian's chromium, headless)

TOKEN = "stage-door-42"


@contextmanager
def show(tmp_path: Path, web: str = "", osc: str = "", nofile: int | None = None) -> Iterator[dict[str, Any]]:
    """The real show (playing: OSC, OSCQuery and the panel on free ports), "other" a free port nothing
    serves; after the block no traceback may be in its log."""
    with playing(tmp_path, web=web, osc=osc, seconds=90, nofile=nofile) as run:
        run["other"] = free_tcp_port()
        yield run
    assert "Traceback" not in run["log"], run["log"][-3000:]


def request(port: int, path: str, method: str = "GET", source: str = "127.0.0.1",
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        return r.status, json.loads(body) if r.getheader("Content-Type", "").startswith("application/json") else body
    finally:
        conn.close()


def status(run: dict[str, Any], source: str = "127.0.0.2") -> dict[str, Any]:
    code, body = request(run["web"], "/api/status", source=source)
    assert code == 200, (code, body)
    return body


def still_playing(run: dict[str, Any], source: str = "127.0.0.2") -> dict[str, Any]:
    """/api/status answers and the frames it counts keep rising (its figures come once a second)."""
    before = status(run, source)["frames_presented"]
    deadline = time.monotonic() + 5
    while (now := status(run, source))["frames_presented"] <= before + 5:
        assert time.monotonic() < deadline, (before, now["frames_presented"])
        time.sleep(0.2)
    return now


def presets_written(run: dict[str, Any]) -> list[Path]:
    return sorted((run["state"] / "presets").glob("*")) if (run["state"] / "presets").is_dir() else []


def hold(port: int, source: str, n: int) -> list[socket.socket]:
    """n bare connections from `source` that send nothing (those the server closes stay open on this side)."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            out.append(s)
        except OSError:
            s.close()
    return out


def test_floods_of_connections_are_refused_at_accept_and_the_show_plays_on(tmp_path: Path) -> None:
    """About 1,030 bare connect()s under systemd's 1024 open files ended the show; with the limit at 256 here
    300 from one sender, then 16 from each of 8 more, are refused past the show's limits."""
    with show(tmp_path, osc='allow = ["127.0.0.0/28"]', nofile=256) as run:
        assert closed_at_accept(run["web"], "127.0.0.99"), "a sender outside the allow-list: closed at accept"
        assert closed_at_accept(run["oscquery"], "127.0.0.99")
        half = socket.create_connection(("127.0.0.1", run["web"]), timeout=KEEPALIVE_S + 5,
                                        source_address=("127.0.0.3", 0))
        half.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
        t_half = time.monotonic()
        held = hold(run["web"], "127.0.0.1", 300)
        try:
            during = still_playing(run)["web"]
            assert during["refused too many connections from one sender"] > 0, during
            assert during["tcp"]["open"] <= during["tcp"]["limit"], during["tcp"]
            assert half.recv(1024) == b"", "a half-sent request is closed"
            assert time.monotonic() - t_half < KEEPALIVE_S + 4
            half.close()
            held += [s for i in range(4, 12) for s in hold(run["web"], f"127.0.0.{i}", 16)]
            time.sleep(0.5)
        finally:
            for s in held:
                s.close()
        time.sleep(1.0)
        after = still_playing(run)["web"]
        print(f"connection flood under 256 open files: {json.dumps(after)}")
        assert after["refused too many connections"] > 0, after
        assert after["refused sender not allowed"] == 2, after
        assert not presets_written(run)
    assert run["stats"]["counters"]["web_connections_refused"] >= after["refused too many connections"]
    assert run["stats"]["counters"]["osc_refused_senders"] >= 2


def test_pages_from_elsewhere_cannot_steer_and_a_foreign_host_reads_nothing(tmp_path: Path) -> None:
    with show(tmp_path, web=f'token = "{TOKEN}"\norigins = ["http://panel.example:8000"]') as run:
        web, q, other = run["web"], run["oscquery"], run["other"]
        conn = http.client.HTTPConnection("127.0.0.1", web, timeout=5)
        conn.request("GET", f"/?token={TOKEN}")
        cookie = {"Cookie": conn.getresponse().getheader("Set-Cookie", "").split(";")[0]}
        conn.close()
        save = build_dgram("/preset/save", 3)
        blackout = build_dgram("/show/blackout", True)

        # a page elsewhere, or on this machine at another port riding the cookie: refused at the handshake
        refused = 0
        for url, origin in [(f"ws://127.0.0.1:{web}/ws", "http://evil.example"),
                            (f"ws://127.0.0.1:{web}/ws", f"http://127.0.0.1:{other}"),
                            (f"ws://127.0.0.1:{q}/?token={TOKEN}", "http://evil.example"),
                            (f"ws://127.0.0.1:{q}/", f"http://localhost:{other}")]:
            with pytest.raises(InvalidStatus) as e, \
                    connect(url, origin=origin, additional_headers=cookie, open_timeout=5) as ws:  # type: ignore[arg-type]
                ws.send(save)
                ws.send(blackout)
            assert e.value.response.status_code == 403
            refused += 1
        # a write over HTTP from a foreign page, and a Host that is not this machine (DNS rebinding)
        assert request(web, "/api/status", "POST", headers={"Origin": "http://evil.example", **cookie})[0] == 403
        refused += 1
        rebound = {"Host": f"evil.example:{web}"}
        for port, path in [(web, "/api/info"), (web, "/api/thumbnail.jpg"), (web, "/"), (web, "/api/status"),
                           (q, "/"), (q, "/mix/amount?VALUE"), (q, "/?HOST_INFO")]:
            code, body = request(port, path, headers=rebound)
            assert code == 403 and "Host" in body["error"], (path, code, body)
        handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        assert request(web, "/ws", headers={**rebound, **handshake, **cookie})[0] == 403

        # the show's own pages, the origins the show names and clients that are not browsers still steer
        for origin in (f"http://127.0.0.1:{web}", f"http://localhost:{web}", "http://panel.example:8000", None):
            with connect(f"ws://127.0.0.1:{web}/ws", origin=origin, additional_headers=cookie,  # type: ignore[arg-type]
                         open_timeout=5) as ws:
                ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/mix/amount"}))
                ws.send(build_dgram("/mix/amount", 0.25))
                deadline = time.monotonic() + 5
                while request(q, "/mix/amount?VALUE")[1]["VALUE"] != [0.25]:
                    assert time.monotonic() < deadline, origin
                    time.sleep(0.05)
                ws.send(build_dgram("/mix/amount", 1.0))
        assert request(web, "/api/info", headers={"Host": f"localhost:{web}"})[0] == 200
        assert request(web, "/api/info", headers={"Host": f"{socket.gethostname()}:{web}"})[0] == 200
        # a token on an Authorization header: the same right as the cookie
        with connect(f"ws://127.0.0.1:{q}/", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            ws.send(build_dgram("/colour/contrast", 1.5))
            deadline = time.monotonic() + 5
            while request(q, "/colour/contrast?VALUE")[1]["VALUE"] != [1.5]:
                assert time.monotonic() < deadline
                time.sleep(0.05)

        now = still_playing(run)
        assert now["blackout"] is False and not presets_written(run)
        assert now["web"]["refused origin"] == refused and now["web"]["refused host"] == 8, now["web"]
    assert run["stats"]["counters"]["web_refused"] >= refused + 8


def test_frames_that_would_crash_or_slip_through_are_refused_on_the_socket(tmp_path: Path) -> None:
    with show(tmp_path) as run:
        with connect(f"ws://127.0.0.1:{run['web']}/ws", max_size=None) as ws:
            ws.send("[" * 30_000)
            assert "nested too deep" in recv_text(ws)["DATA"]
            for frame, why in [(build_dgram("/mix/amount", "0.5"), "expects a number"),
                               (build_dgram("/mix/amount", True), "expects a number"),
                               (build_dgram("/show/blackout", "1"), "expects T, F or a number"),
                               (build_dgram("/pre/crop", 1.5), "a choice's name or index"),
                               (build_dgram("/preset/recall", "2"), "expects nothing, T, F or a number")]:
                ws.send(frame)
                assert why in recv_text(ws)["DATA"], frame
            # a LISTEN flood: past its share a second the client hears why, the rest is counted
            for _ in range(500):
                ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/"}))
            assert "LISTEN / IGNORE a second" in recv_text(ws)["DATA"]
            # the client is still served: its values come back
            ws.send(build_dgram("/sync"))
            deadline = time.monotonic() + 5
            while not isinstance(ws.recv(timeout=max(0.01, deadline - time.monotonic())), bytes):
                pass
        # four clients listening to "/" and ignoring it again as fast as they can (each LISTEN rebuilt the
        # whole tree once, and four such clients made /api/status time out): the show answers and plays on
        stop = threading.Event()
        floods = [threading.Thread(target=listen_flood, args=(run["web"], stop), daemon=True) for _ in range(4)]
        for t in floods:
            t.start()
        try:
            time.sleep(0.5)
            still_playing(run)
            t0 = time.monotonic()
            status(run)
            assert time.monotonic() - t0 < 1.0, "/api/status answered slowly under LISTEN floods"
        finally:
            stop.set()
            for t in floods:
                t.join(15)
        deadline = time.monotonic() + 15  # the flooders' sessions end (the server reads up to their close)
        while status(run)["web"]["clients"]:
            assert time.monotonic() < deadline, status(run)["web"]
            time.sleep(0.2)

        # WebSocket clients past MAX_WEBSOCKETS, from three senders (each within its share of connections)
        opened, refused = 0, 0
        with ExitStack() as clients:
            for i in range(MAX_WEBSOCKETS + 2):
                try:
                    clients.enter_context(connect(f"ws://127.0.0.1:{run['web']}/ws", open_timeout=5,
                                                  source_address=(f"127.0.0.{4 + i % 3}", 0)))
                    opened += 1
                except InvalidStatus as e:
                    assert e.response.status_code == 503
                    refused += 1
            assert opened == MAX_WEBSOCKETS and refused == 2
            assert status(run)["web"]["clients"] == MAX_WEBSOCKETS
        now = still_playing(run)
        web = now["web"]
        assert web["refused too many websockets"] == 2, web
        assert web["refused malformed"] == 1 and web["refused bad value"] == 5, web
        assert web["refused too many listens"] > 0, web
        assert status(run)["blackout"] is False and not presets_written(run)
    assert "RecursionError" not in run["log"]


def listen_flood(port: int, stop: threading.Event) -> None:
    with connect(f"ws://127.0.0.1:{port}/ws") as ws:
        while not stop.is_set():
            for command in ("LISTEN", "IGNORE"):
                ws.send(json.dumps({"COMMAND": command, "DATA": "/"}))


PAGE_TRIES = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
const ws = new WebSocket(url);
ws.binaryType = "arraybuffer";
ws.onopen = () => {
  // /show/blackout ,T as OSC: the address padded to 16 bytes, the type tags to 4
  const bytes = new Uint8Array(20);
  bytes.set(new TextEncoder().encode("/show/blackout"), 0);
  bytes.set(new TextEncoder().encode(",T"), 16);
  ws.send(bytes);
  setTimeout(() => done("open"), 500);
};
ws.onerror = () => done("refused");
"""


def test_a_page_from_another_origin_cannot_set_blackout_in_a_real_browser(tmp_path: Path,
                                                                           browser: object) -> None:  # noqa: F811
    d = browser
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<!doctype html><title>another site</title><p>hello</p>")
    site = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site")))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with show(tmp_path) as run:
            url = f"ws://127.0.0.1:{run['web']}/ws"
            d.get(f"http://127.0.0.1:{site.server_address[1]}/")  # type: ignore[attr-defined]
            assert d.execute_async_script(PAGE_TRIES, url) == "refused"  # type: ignore[attr-defined]
            time.sleep(0.5)
            now = still_playing(run)
            assert now["blackout"] is False and now["web"]["refused origin"] == 1, now["web"]
            # the same script from the show's own page opens and sets blackout: the Origin was the difference
            d.get(f"http://127.0.0.1:{run['web']}/status")  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5  # the status page shows the refusal
            while "(refused 1)" not in d.find_element("id", "osc").text:  # type: ignore[attr-defined]
                assert time.monotonic() < deadline, d.find_element("id", "osc").text  # type: ignore[attr-defined]
                time.sleep(0.1)
            d.save_screenshot(str(tmp_path / "status-after-a-foreign-page.png"))  # type: ignore[attr-defined]
            assert d.execute_async_script(PAGE_TRIES, url) == "open"  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5
            while not status(run)["blackout"]:
                assert time.monotonic() < deadline, "the show's own page could not set blackout"
                time.sleep(0.1)
    finally:
        site.shutdown()
