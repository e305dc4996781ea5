"""OSCQuery as an independent client sees it: the real command, plain HTTP, the `websockets` library on the
WebSocket HOST_INFO names, real UDP OSC. LISTEN brings values as binary OSC messages, IGNORE stops them,
a saved preset changes the tree (PATH_CHANGED), bad input is refused on the socket, counted and changes
nothing, a client that stops reading is dropped while the others carry on."""

from __future__ import annotations

import http.client
import json
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from pythonosc.osc_message import OscMessage
from websockets.sync.client import ClientConnection, connect

from installation.control.osc.wire import build_dgram
from tests.conftest import SYNTHETIC, small_show
from tests.scenarios.conftest import INSTALLATION, cli_env, free_tcp_port, free_udp_port, osc_send, wait_presenting

TOKEN = "stage-door-42"


def get(port: int, path: str, source: str = "127.0.0.1") -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, json.loads(body) if body and r.getheader("Content-Type", "").startswith("application/json") \
            else body
    finally:
        conn.close()


def closed_at_accept(port: int, source: str) -> bool:
    """The server closes a connection from `source` before it reads anything: what is sent gets no answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(1024) == b""
        except OSError:  # reset: closed before the request arrived
            return True


@contextmanager
def playing(tmp_path: Path, web: str = "", seconds: float = 40, osc: str = "",
            nofile: int | None = None) -> Iterator[dict[str, Any]]:
    """`installation rehearse` with OSC, OSCQuery and the web on free ports (`nofile`: under that open-file
    limit, so a flood needs fewer sockets); yields the ports and its state folder ("state") and, once the
    show stopped (SIGTERM at the end of the block), its stats and log under "stats" and "log"."""
    ports = {"osc": free_udp_port(), "oscquery": free_tcp_port(), "web": free_tcp_port()}
    show = small_show(tmp_path, name="webq", source=SYNTHETIC + "\nfps = 30",
                      osc=f'host = "127.0.0.1"\nport = {ports["osc"]}\noscquery_port = {ports["oscquery"]}\n{osc}',
                      tail=f"[web]\nport = {ports['web']}\n{web}")
    stats = tmp_path / "stats.json"
    limit = None if nofile is None else partial(resource.setrlimit, resource.RLIMIT_NOFILE, (nofile, nofile))
    proc = subprocess.Popen([INSTALLATION, "rehearse", str(show), "--headless", "--seconds", str(seconds),
                             "--stats", str(stats)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(tmp_path), cwd=tmp_path, preexec_fn=limit)
    out: dict[str, Any] = dict(ports, state=tmp_path / "state-root" / "webq")
    try:
        wait_presenting(tmp_path, show, proc)
        yield out
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    out["log"] = err
    assert proc.returncode == 0, err[-3000:]
    out["stats"] = json.loads(stats.read_text())


def recv_osc(ws: ClientConnection, timeout: float) -> list[tuple[str, list[Any]]]:
    """Binary OSC messages arriving within `timeout` (text frames are skipped)."""
    got = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = ws.recv(timeout=left)
        except TimeoutError:
            break
        if isinstance(frame, bytes):
            m = OscMessage(frame)
            got.append((m.address, list(m.params)))
    return got


def recv_text(ws: ClientConnection, timeout: float = 5.0, command: str = "ERROR") -> dict[str, Any]:
    """The next JSON frame with this COMMAND (values and other notices on the way are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(frame, str) and json.loads(frame)["COMMAND"] == command:
            return json.loads(frame)


def test_oscquery_tree_listen_ignore_path_changed_and_bad_input(tmp_path: Path) -> None:
    # udp = true: a token turns OSC over UDP off unless the show keeps it (docs/security.md)
    with playing(tmp_path, web=f'token = "{TOKEN}"', osc='allow = ["127.0.0.1/32"]\nudp = true') as run:
        q = run["oscquery"]
        # the tree and its attributes, as the spec has them
        code, root = get(q, "/")
        assert code == 200 and root["FULL_PATH"] == "/"
        amount = root["CONTENTS"]["mix"]["CONTENTS"]["amount"]
        assert amount["TYPE"] == "f" and amount["ACCESS"] == 3 and amount["RANGE"] == [{"MIN": 0, "MAX": 1}]
        assert amount["VALUE"] == [1.0] and amount["CLIPMODE"] == ["both"] and amount["DESCRIPTION"]
        assert root["CONTENTS"]["pre"]["CONTENTS"]["blur"]["UNIT"] == ["px"]
        assert get(q, "/mix/amount?VALUE") == (200, {"VALUE": [1.0]})
        assert get(q, "/mix/amount?UNIT")[0] == 204  # an attribute this node doesn't have
        assert get(q, "/mix/amount?BOGUS")[0] == 400 and get(q, "/no/such")[0] == 404
        assert closed_at_accept(q, "127.0.0.5"), "the show's allow-list guards it too, before a request is read"
        code, info = get(q, "/?HOST_INFO")
        assert info["EXTENSIONS"]["LISTEN"] is True and info["EXTENSIONS"]["PATH_CHANGED"] is True
        assert info["OSC_PORT"] == run["osc"] and info["WS_PORT"] == q

        url = f"ws://{info['WS_IP']}:{info['WS_PORT']}/"
        with connect(url + f"?token={TOKEN}") as ws, connect(url) as viewer:
            ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/mix/amount"}))
            viewer.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/mix/amount"}))
            time.sleep(0.2)
            osc_send(run["osc"], "/mix/amount", 0.25)
            assert wait_value(ws, "/mix/amount", 0.25, 3.0) < 3.0, "an OSC change arrives as binary OSC"
            assert wait_value(viewer, "/mix/amount", 0.25, 3.0) < 3.0

            # values sent as binary OSC on the socket change the show as OSC does
            ws.send(build_dgram("/mix/amount", 0.5))
            assert wait_value(viewer, "/mix/amount", 0.5, 3.0) < 3.0
            assert get(q, "/mix/amount?VALUE") == (200, {"VALUE": [0.5]})
            assert wait_value(ws, "/mix/amount", 0.5, 3.0) < 3.0, "the sender hears the show's value too"

            ws.send(json.dumps({"COMMAND": "IGNORE", "DATA": "/mix/amount"}))
            time.sleep(0.2)
            osc_send(run["osc"], "/mix/amount", 0.75)
            assert recv_osc(ws, 1.0) == [], "IGNORE stops the values"
            assert wait_value(viewer, "/mix/amount", 0.75, 3.0) < 3.0

            # a preset saved changes what /preset/recall takes: listening clients hear PATH_CHANGED
            osc_send(run["osc"], "/preset/save", 7)
            notice = recv_text(ws, 5.0, "PATH_CHANGED")
            assert notice == {"COMMAND": "PATH_CHANGED", "DATA": "/preset/recall"}
            assert 7 in get(q, "/preset/recall?RANGE")[1]["RANGE"][0]["VALS"]

            # bad input: refused on the socket with a reason, counted, nothing changed
            bad: list[tuple[str | bytes, str]] = [
                ("{not json", "not JSON"),
                (json.dumps({"COMMAND": "DANCE", "DATA": "/mix/amount"}), "unknown COMMAND"),
                (json.dumps({"COMMAND": "LISTEN", "DATA": 42}), "needs an OSC address"),
                (json.dumps({"COMMAND": "LISTEN", "DATA": "/no/such"}), "no such OSC address"),
                (build_dgram("/mix/amount", 7.0), "outside 0..1"),
                (build_dgram("/mix/amount", "loud"), "expects a number"),
                (build_dgram("/pre/crop", "sideways"), "expects one of"),
                (build_dgram("/no/such", 1.0), "no such parameter"),
                (b"\x00\x01garbage", "not an OSC packet"),
            ]
            for frame, why in bad:
                ws.send(frame)
                reply = recv_text(ws)
                assert reply["COMMAND"] == "ERROR" and why in reply["DATA"], (frame, reply)
            viewer.send(build_dgram("/mix/amount", 0.1))
            assert "token" in recv_text(viewer)["DATA"], "without the token a client may look, not change"
        # the panel opened once with ?token= keeps it in a cookie, which the browser's WebSocket carries
        conn = http.client.HTTPConnection("127.0.0.1", run["web"], timeout=5)
        conn.request("GET", f"/?token={TOKEN}")
        cookie = conn.getresponse().getheader("Set-Cookie", "").split(";")[0]
        conn.close()
        assert cookie == f"installation_token={TOKEN}"
        with connect(f"ws://127.0.0.1:{run['web']}/ws", additional_headers={"Cookie": cookie}) as panel:
            panel.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/colour/contrast"}))
            panel.send(build_dgram("/colour/contrast", 1.5))
            assert wait_value(panel, "/colour/contrast", 1.5, 3.0) < 3.0
        assert get(q, "/mix/amount?VALUE") == (200, {"VALUE": [0.75]})
        assert get(q, "/pre/crop?VALUE") == (200, {"VALUE": ["centre"]})
    assert run["stats"]["counters"]["web_refused"] == len(bad) + 1, run["stats"]["counters"]


def wait_value(ws: ClientConnection, address: str, value: Any, timeout: float) -> float:
    """Seconds until `address` arrives with `value` (other frames are skipped)."""
    t0 = time.monotonic()
    while (left := t0 + timeout - time.monotonic()) > 0:
        frame = ws.recv(timeout=left)
        if isinstance(frame, bytes) and (m := OscMessage(frame)).address == address and list(m.params) == [value]:
            return time.monotonic() - t0
    raise TimeoutError(f"{address} {value} did not arrive within {timeout} s")


def stuck_client(port: int) -> socket.socket:
    """A WebSocket client that listens to everything and then never reads again (not even a ping): the
    handshake by hand, a tiny receive buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    text = json.dumps({"COMMAND": "LISTEN", "DATA": "/"}).encode()
    mask = b"\x01\x02\x03\x04"
    sock.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
    return sock


def test_a_client_that_stops_reading_is_dropped_and_the_others_carry_on(tmp_path: Path) -> None:
    with playing(tmp_path) as run:
        url = f"ws://127.0.0.1:{run['web']}/ws"
        stuck = stuck_client(run["web"])
        with connect(url) as fine:
            fine.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/mix/amount"}))
            time.sleep(0.3)
            t_end = time.monotonic() + 15
            dropped, i, waits = 0, 0, []
            while time.monotonic() < t_end and not dropped:
                i += 1
                value = (i % 64) / 64  # exact in OSC's float32; many values on many addresses fill the stuck one up
                for name in ("colour/brightness", "colour/contrast", "pre/blur", "seg/feather", "mix/amount"):
                    osc_send(run["osc"], f"/{name}", value)
                waits.append(wait_value(fine, "/mix/amount", value, 5.0))
                dropped = get(run["web"], "/api/status")[1]["web"].get("clients dropped", 0)
            assert dropped == 1, "the client that stopped reading was dropped"
            assert max(waits) < 1.0, f"the reading client never waited on the stuck one: {max(waits):.2f} s"
            osc_send(run["osc"], "/mix/amount", 47 / 128)  # not one of the values above
            assert wait_value(fine, "/mix/amount", 47 / 128, 3.0) < 1.0, "and the others still hear every change"
        stuck.settimeout(5)
        try:  # the server cut it: what was on the way can be read, then the stream ends (or is reset)
            while stuck.recv(65536):
                pass
            ended = True
        except TimeoutError:
            ended = False
        except OSError:
            ended = True
        stuck.close()
        assert ended, "the stuck client's connection was cut"
    assert run["stats"]["counters"]["web_clients_dropped"] == 1
    assert "dropped" in run["log"]


def test_python_oscquery_reads_the_whole_tree_and_a_value_set_over_osc(tmp_path: Path) -> None:
    """python-oscquery 0.4.0 (the VRChat tools' library) as an independent client: it refused our tree at
    the seven write-only methods ("No value(s) given, access must be NO_VALUE for container nodes")."""
    from pythonoscquery.osc_query_client import OSCQueryClient
    from pythonoscquery.shared.osc_access import OSCAccess
    from zeroconf import ServiceInfo

    with playing(tmp_path) as run:
        info = ServiceInfo("_oscjson._tcp.local.", "webq._oscjson._tcp.local.", port=run["oscquery"],
                           parsed_addresses=["127.0.0.1"])
        client = OSCQueryClient(info)
        root = client.query_node("/")
        assert root is not None
        nodes = {n.full_path: n for n in root}
        write_only = ["/preset/save", "/preset/recall", "/preset/next", "/preset/prev", "/seg/relearn", "/show/grab",
                      "/sync"]
        for path in write_only:
            assert nodes[path].access == OSCAccess.WRITEONLY_VALUE, path
            assert get(run["oscquery"], f"{path}?VALUE")[0] == 204, "the spec: a value that can't be read"
        assert nodes["/status/fps"].access == OSCAccess.READONLY_VALUE
        methods = [n for n in nodes.values() if n.access is not OSCAccess.NO_VALUE]
        assert client.last_json is not None and len(methods) == len(_methods(client.last_json)) > 40
        host = client.get_host_info()
        assert host is not None and host.osc_port == run["osc"]

        osc_send(run["osc"], "/mix/amount", 0.25)
        deadline = time.monotonic() + 5
        while (node := client.query_node("/mix/amount")) is not None and node.value != [0.25]:
            assert time.monotonic() < deadline, node.value
            time.sleep(0.05)
        assert node is not None and node.access == OSCAccess.READWRITE_VALUE


def _methods(doc: dict[str, Any]) -> list[str]:
    """Every method (a node with a TYPE) of a JSON tree."""
    out = [doc["FULL_PATH"]] if "TYPE" in doc else []
    for child in doc.get("CONTENTS", {}).values():
        out += _methods(child)
    return out
