"""OSC live control against a real headless Show: real UDP on 127.0.0.1, python-osc on the other end.

The helpers here (a show file, a built show, a loop step, a feedback listener) are used by
test_presets.py and test_osc_fuzz.py too.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import SYNTHETIC, small_show
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from installation.app import RunOptions, Show, default_registry, load_show
from installation.control.access import parse_target
from installation.control.addressmap import osc_map_markdown, osc_map_text
from installation.control.osc import wire as oscwire
from installation.control.osc.control import OscControl
from installation.control.osc.wire import build_dgram
from installation.show.options import ControlOptions

REPO = Path(__file__).resolve().parent.parent


# ---- helpers (also imported by test_presets.py and test_osc_fuzz.py) --------------------------------------

def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def show_file(tmp_path: Path, name: str = "osc_test", extra: str = "") -> Path:
    return small_show(tmp_path, name=name, source=SYNTHETIC + "\nfps = 30", file=f"{name}.toml",
                      osc=f'host = "127.0.0.1"\nport = 0\noscquery_port = 0\n{extra}')


def panel_off(**control: Any) -> ControlOptions:
    """The control options these tests run with: the panel's fixed port is not what they test
    (tests/scenarios/test_web_* do)."""
    return ControlOptions(web_port=0, **control)


def make_show(tmp_path: Path, extra: str = "", name: str = "osc_test", control: ControlOptions | None = None,
              **opts: Any) -> Show:
    opts.setdefault("state", tmp_path / "state")
    opts.setdefault("realtime", True)
    cfg = load_show(show_file(tmp_path, name, extra))
    return Show(cfg, RunOptions(headless=True, control=control or panel_off(), **opts)).build()


def control(show: Show) -> OscControl:
    return next(c for c in show.surfaces if isinstance(c, OscControl))


def step(show: Show, n: int = 1) -> None:
    """The body of Show.run(), n times: update, then draw a result when one came."""
    for _ in range(n):
        show.update()
        result = show.results.get(timeout=0.02)
        if result is not None:
            show._last = result
            show.view(result)


def pump_until(show: Show, cond: Callable[[], bool], timeout: float = 5.0, draw: bool = False) -> bool:
    """Run the loop until cond() holds; False if it never did within timeout (a generous bound, not a speed
    assertion: the machine is shared)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if draw:
            step(show)
        else:
            show.update()
            time.sleep(0.002)
        if cond():
            return True
    return False


def assert_in_range(show: Show) -> None:
    for source in (show.store.targets(), show.store.snapshot()):
        for name in source:
            p = show.registry[name]
            v = source[name]
            if p.kind in ("float", "int"):
                assert isinstance(v, (int, float)) and math.isfinite(v), (name, v)
                assert p.lo - 1e-9 <= v <= p.hi + 1e-9, (name, v)
            elif p.kind == "bool":
                assert isinstance(v, bool), (name, v)
            elif p.kind == "choice":
                assert v in p.choices, (name, v)
            elif p.kind == "str":
                assert isinstance(v, str), (name, v)


class Listener:
    """A controller's receiving side: python-osc's server on a free port, collecting what the show sends."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[tuple[str, tuple[Any, ...]]] = []
        self._cond = threading.Condition()
        d = Dispatcher()
        d.set_default_handler(self._on)
        self.server = BlockingOSCUDPServer(("127.0.0.1", port), d)
        self.server.timeout = 0.05
        self.port = self.server.server_address[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.server.handle_request()

    def _on(self, address: str, *args: Any) -> None:
        with self._cond:
            self.messages.append((address, args))
            self._cond.notify_all()

    def got(self, address: str, pred: Callable[[tuple[Any, ...]], bool] = lambda a: True) -> list[tuple[Any, ...]]:
        with self._cond:
            return [a for addr, a in self.messages if addr == address and pred(a)]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.server.server_close()


def wait_for(show: Show, listener: Listener, address: str, pred: Callable[[tuple[Any, ...]], bool] = lambda a: True,
             timeout: float = 5.0) -> tuple[Any, ...]:
    assert pump_until(show, lambda: bool(listener.got(address, pred)), timeout), \
        f"{address} never arrived; got {sorted({a for a, _ in listener.messages})}"
    return listener.got(address, pred)[0]


@pytest.fixture
def show(tmp_path: Path):
    s = make_show(tmp_path)
    yield s
    s.close()


# ---- setting values ---------------------------------------------------------------------------------------

def test_values_are_coerced_clamped_and_bad_ones_counted(show: Show) -> None:
    c = control(show)
    assert c.port > 0
    client = SimpleUDPClient("127.0.0.1", c.port)
    store = show.store
    client.send_message("/pre/blur", 7.5)
    client.send_message("/pre/median", 3.7)  # int: rounded
    client.send_message("/pre/threshold", 9000)  # clamped to 255
    client.send_message("/pre/adaptive_c", -1e30)  # clamped to -50
    client.send_message("/pre/flip", 0)
    client.send_message("/pre/crop", "fit")  # a choice by name...
    client.send_message("/display/rotate", 2)  # ...or by index
    client.send_message("/hud/show", True)
    client.send_message("/model/select", "no_such_model")  # a str parameter reaches the store like any other
    assert pump_until(show, lambda: store.target("model/select") == "no_such_model")
    assert store.target("pre/blur") == 7.5
    assert store.target("pre/median") == 4
    assert store.target("pre/threshold") == 255.0
    assert store.target("pre/adaptive_c") == -50.0
    assert store.target("pre/flip") is False
    assert store.target("pre/crop") == "fit"
    assert store.target("display/rotate") == "180"
    assert store.target("hud/show") is True

    before = dict(store.targets())
    client.send_message("/pre/blur", float("nan"))
    client.send_message("/pre/blur", float("inf"))
    client.send_message("/pre/blur", "lots")
    client.send_message("/pre/blur", [1.0, 2.0])  # two values
    client.send_message("/pre/blur", [])  # none
    client.send_message("/pre/crop", 7)  # no such index
    client.send_message("/pre/nope", 1.0)
    client.send_message("/colour/brightness", b"\x00\x01")  # a blob
    client.send_message("/pre/blur", "5")  # the one type rule: text never stands for a number...
    client.send_message("/pre/blur", True)  # ...nor T/F
    client.send_message("/hud/show", "off")  # ...nor for a bool
    assert pump_until(show, lambda: c.counters.rejected >= 11)
    counts = c.counters.snapshot()
    assert counts["reasons"]["bad value"] == 10 and counts["reasons"]["unknown address"] == 1
    assert counts["by_address"]["/pre/blur"] == 7 and counts["by_address"]["/pre/nope"] == 1
    now = store.targets()
    assert {k: v for k, v in now.items() if k != "model/select"} == \
        {k: v for k, v in before.items() if k != "model/select"}
    hud = "\n".join(show.hud_text())
    assert "dropped 11" in hud and "bad value 10" in hud
    assert_in_range(show)


def test_trigger_fires_on_press_not_release_and_patterns_never_fire(show: Show, tmp_path: Path) -> None:
    c = control(show)
    client = SimpleUDPClient("127.0.0.1", c.port)
    client.send_message("/pre/blur", 3.0)
    client.send_message("/preset/save", 2)
    client.send_message("/preset/save", 0)  # the button's release
    assert pump_until(show, lambda: (tmp_path / "state/presets/preset-02.json").exists())
    client.send_message("/seg/key_*", 0.25)  # a pattern sets every value it matches...
    t = show.store.target
    assert pump_until(show, lambda: t("seg/key_r") == t("seg/key_g") == t("seg/key_b") == 0.25)
    client.send_message("/preset/*", 5)  # ...but fires no trigger: only preset/morph_s changes
    assert pump_until(show, lambda: t("preset/morph_s") == 5.0)
    step(show, 3)
    assert sorted(p.name for p in (tmp_path / "state/presets").iterdir()) == ["preset-02.json"]
    assert_in_range(show)


def test_bundle_lands_in_one_frame_without_waiting_for_its_timetag(show: Show) -> None:
    c = control(show)
    bundle = OscBundleBuilder(time.time() + 3600)  # an hour ahead: strict timing would sleep the receiver
    for address, value in (("/pre/blur", 4.0), ("/colour/contrast", 2.5), ("/mix/mode", "camera")):
        m = OscMessageBuilder(address)
        m.add_arg(value)
        bundle.add_content(m.build())
    inner = OscBundleBuilder(0)
    m = OscMessageBuilder("/seg/grow")
    m.add_arg(5)
    inner.add_content(m.build())
    bundle.add_content(inner.build())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(bundle.build().dgram, ("127.0.0.1", c.port))
    seen = []

    def landed() -> bool:
        t = show.store.targets()
        seen.append((t["pre/blur"], t["colour/contrast"], t["mix/mode"], t["seg/grow"]))
        return t["pre/blur"] == 4.0

    assert pump_until(show, landed, 5.0)
    # every message of the bundle arrived with the first one, never part of it in an earlier frame
    assert seen[-1] == (4.0, 2.5, "camera", 5)
    assert all(v == (0.0, 1.0, "output", 0) for v in seen[:-1])


# ---- feedback -----------------------------------------------------------------------------------------------

def test_changes_from_any_source_are_mirrored_and_sync_sends_everything(tmp_path: Path) -> None:
    fb = Listener()
    show = make_show(tmp_path, control=panel_off(osc_feedback=(f"127.0.0.1:{fb.port}",)))
    try:
        c = control(show)
        # at start every value goes out, so a controller shows the show's state at once
        values = [p for p in show.registry.values() if p.kind != "trigger"]
        assert pump_until(show, lambda: all(fb.got(p.address) for p in values))
        assert fb.got("/pre/blur") == [(0.0,)]
        fb.clear()
        client = SimpleUDPClient("127.0.0.1", c.port)
        client.send_message("/pre/blur", 50.0)  # clamped: the controller's fader must jump to 20
        assert wait_for(show, fb, "/pre/blur") == (20.0,)
        show.store.set("colour/contrast", 2.0, source="api")  # not from OSC: mirrored all the same
        assert wait_for(show, fb, "/colour/contrast") == (2.0,)
        show.store.set("pre/crop", "none", source="api")  # a choice goes out as its index
        assert wait_for(show, fb, "/pre/crop") == (2,)
        show.store.set("show/blackout", True, source="key")
        assert wait_for(show, fb, "/show/blackout") == (1,)
        show.store.set("mix/amount", 0.25)  # a smoothed value: the target goes out at once, once
        assert wait_for(show, fb, "/mix/amount") == (0.25,)
        for _ in range(10):
            show.update()
        assert len(fb.got("/mix/amount")) == 1

        fb.clear()
        client.send_message("/sync", [])
        assert pump_until(show, lambda: all(fb.got(p.address) for p in values))
        assert fb.got("/pre/blur") == [(20.0,)]
        assert not fb.got("/preset/save")  # triggers have no value to mirror

        beat = wait_for(show, fb, "/status/heartbeat", timeout=5.0)
        assert isinstance(beat[0], int)
        for address in ("/status/fps", "/status/dropped", "/status/errors", "/status/preset", "/status/frames",
                        "/status/reconnects", "/status/memory_mb"):
            wait_for(show, fb, address)
        assert fb.got("/status/memory_mb")[-1][0] > 10, "the process's real resident memory, in MiB"
    finally:
        show.close()
        fb.close()


def test_feedback_to_sender_without_echo(tmp_path: Path) -> None:
    show = make_show(tmp_path, extra="feedback_to_sender = true")
    try:
        c = control(show)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.settimeout(0.01)
            got: list[tuple[str, tuple[Any, ...]]] = []

            def drain() -> None:
                from pythonosc.osc_message import OscMessage

                while True:
                    try:
                        data = s.recv(65536)
                    except TimeoutError:
                        return
                    m = OscMessage(data)
                    got.append((m.address, tuple(m.params)))

            s.sendto(build_dgram("/pre/blur", 5.0), ("127.0.0.1", c.port))
            assert pump_until(show, lambda: show.store.target("pre/blur") == 5.0)
            s.sendto(build_dgram("/pre/blur", 99.0), ("127.0.0.1", c.port))  # clamped: must come back

            def back() -> bool:
                drain()
                return ("/pre/blur", (20.0,)) in got

            assert pump_until(show, back)
            # the in-range value it sent itself was not echoed back; another source's change is
            assert ("/pre/blur", (5.0,)) not in got
            show.store.set("colour/saturation", 0.5, source="api")
            assert pump_until(show, lambda: (drain(), ("/colour/saturation", (0.5,)) in got)[1])
    finally:
        show.close()


# ---- access ---------------------------------------------------------------------------------------------------

def test_allow_list_drops_other_senders(tmp_path: Path) -> None:
    show = make_show(tmp_path, control=panel_off(osc_allow=("127.0.0.2",)))
    try:
        c = control(show)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(build_dgram("/pre/blur", 2.0), ("127.0.0.1", c.port))  # from 127.0.0.1: not allowed
        assert pump_until(show, lambda: c.counters.reasons["not allowed"] == 1)
        assert show.store.target("pre/blur") == 0.0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.sendto(build_dgram("/pre/blur", 3.0), ("127.0.0.1", c.port))
        assert pump_until(show, lambda: show.store.target("pre/blur") == 3.0)
        assert "(from 127.0.0.1)" in c.counters.snapshot()["by_address"]
    finally:
        show.close()


def test_port_taken_is_reported_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OscControl, "retry_s", 0.2)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    port = blocker.getsockname()[1]
    show = make_show(tmp_path, control=panel_off(osc_port=port))
    try:
        c = control(show)
        assert c.server is not None and not c.server.listening
        hud = "\n".join(show.hud_text())
        assert f"OSC port {port} is taken" in hud
        step(show, 3)  # the show runs on, deaf for now
        blocker.close()
        assert pump_until(show, lambda: c.server.listening, 5.0)
        assert c.port == port and f"OSC port {port} is taken" not in "\n".join(show.hud_text())
        SimpleUDPClient("127.0.0.1", port).send_message("/pre/blur", 6.0)
        assert pump_until(show, lambda: show.store.target("pre/blur") == 6.0)
    finally:
        blocker.close()
        show.close()


# ---- the address map, docs and controller layouts ------------------------------------------------------

def test_osc_map_lists_every_address(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from installation.cli import main

    assert main(["osc-map", str(show_file(tmp_path, extra=""))]) == 0
    out = capsys.readouterr().out
    for p in default_registry().values():
        assert p.address in out
    for address in ("/sync", "/status/fps", "/status/heartbeat"):
        assert address in out
    assert main(["osc-map", "--markdown"]) == 0
    assert capsys.readouterr().out == osc_map_markdown(default_registry())
    text = osc_map_text(default_registry())
    line = next(ln for ln in text.splitlines() if ln.startswith("/pre/blur "))
    assert "float" in line and "0..20" in line and "px" in line


def test_docs_and_controller_layouts_are_up_to_date() -> None:
    """docs/osc.md, controllers/installation.tosc and .maxpat are generated from the registry: regenerate
    with `python scripts/make_controller_layouts.py` when a parameter changes."""
    r = subprocess.run([sys.executable, str(REPO / "scripts/make_controller_layouts.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (REPO / "docs/osc.md").read_text() == osc_map_markdown(default_registry())


def test_controller_layouts_cover_the_registry() -> None:
    import zlib

    tosc = zlib.decompress((REPO / "controllers/installation.tosc").read_bytes()).decode()
    maxpat = json.loads((REPO / "controllers/installation.maxpat").read_text())
    texts = " ".join(b["box"].get("text", "") for b in maxpat["patcher"]["boxes"])
    for p in default_registry().values():
        if p.kind == "str":
            continue
        assert f"<![CDATA[{p.address}]]>" in tosc or f">{p.address}<" in tosc, p.address
        assert p.address in texts, p.address
    ids = {b["box"]["id"] for b in maxpat["patcher"]["boxes"]}
    for line in maxpat["patcher"]["lines"]:
        assert line["patchline"]["source"][0] in ids and line["patchline"]["destination"][0] in ids


# ---- record and replay -------------------------------------------------------------------------------------

def test_record_writes_accepted_messages_with_time_and_frame(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    show = make_show(tmp_path, control=panel_off(osc_record=rec))
    try:
        c = control(show)
        client = SimpleUDPClient("127.0.0.1", c.port)
        step(show, 3)
        client.send_message("/pre/blur", 3.0)
        client.send_message("/nope", 1.0)  # rejected: not recorded
        client.send_message("/pre/blur", float("nan"))  # rejected: not recorded
        assert pump_until(show, lambda: show.store.target("pre/blur") == 3.0, draw=True)
        step(show, 3)
        client.send_message("/preset/save", 4)
        client.send_message("/preset/save", 0)  # a release: not applied, not recorded
        assert pump_until(show, lambda: (tmp_path / "state/presets/preset-04.json").exists(), draw=True)
    finally:
        show.close()
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    assert [(x["address"], x["args"]) for x in lines] == [("/pre/blur", [3.0]), ("/preset/save", [4])]
    assert all(set(x) == {"t", "frame", "address", "args"} for x in lines)
    assert 0 <= lines[0]["t"] <= lines[1]["t"]
    assert 0 < lines[0]["frame"] <= lines[1]["frame"]


class ObservedShow(Show):
    """A real Show that notes the snapshot each source frame was processed with."""

    seen: dict[int, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        process = self.workers.process

        def observed(frame, snap, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.seen[frame.index] = {k: snap[k] for k in ("pre/blur", "colour/brightness", "mix/mode", "pre/median")}
            return process(frame, snap, *args, **kwargs)

        self.workers.process = observed  # type: ignore[method-assign]


def _rehearse(tmp_path: Path, recording: Path, run: int) -> dict[int, dict[str, Any]]:
    cfg = load_show(show_file(tmp_path, "replayed"))
    show = ObservedShow(cfg, RunOptions(headless=True, frames=24, lockstep=True, realtime=False,
                                        control=ControlOptions(osc_replay=recording), state=tmp_path / f"state{run}"))
    show.seen = {}
    show.build()
    show.run()
    return show.seen


def test_lockstep_replay_is_frame_exact_and_repeatable(tmp_path: Path) -> None:
    rec = tmp_path / "cue.jsonl"
    msgs = [
        {"t": 9.0, "frame": 5, "address": "/pre/blur", "args": [3.0]},
        {"t": 0.1, "frame": 10, "address": "/colour/brightness", "args": [1.6]},  # smoothed over 0.1 s = 3 frames
        {"t": 0.2, "frame": 10, "address": "/mix/mode", "args": [4]},
        {"t": 0.3, "frame": 14, "address": "/pre/median", "args": [99]},  # clamped to 15, like live
        {"t": 0.4, "frame": 16, "address": "/pre/nope", "args": [1]},  # dropped, like live
        {"t": 0.5, "frame": 500, "address": "/pre/blur", "args": [9.0]},  # past the end: never applied
    ]
    rec.write_text("\n".join(json.dumps(m) for m in msgs) + "\n{broken line\n")
    first = _rehearse(tmp_path, rec, 1)
    second = _rehearse(tmp_path, rec, 2)
    assert set(range(24)) <= set(first) and all(first[i] == second[i] for i in range(24))
    assert [first[i]["pre/blur"] for i in (0, 4, 5, 6, 23)] == [0.0, 0.0, 3.0, 3.0, 3.0]
    assert first[9]["colour/brightness"] == 1.0 and first[9]["mix/mode"] == "output"
    assert first[10]["mix/mode"] == "camera"
    ramp = [first[i]["colour/brightness"] for i in range(10, 15)]
    assert ramp[0] < ramp[1] < ramp[2] < 1.6 and ramp[3] == ramp[4] == pytest.approx(1.6)
    assert first[13]["pre/median"] == 0 and first[14]["pre/median"] == 15


def test_replay_by_time_waits_for_each_message(tmp_path: Path) -> None:
    rec = tmp_path / "cue.jsonl"
    rec.write_text(json.dumps({"t": 0.0, "frame": 0, "address": "/pre/blur", "args": [1.0]}) + "\n"
                   + json.dumps({"t": 0.6, "frame": 3, "address": "/pre/blur", "args": [2.0]}) + "\n")
    show = make_show(tmp_path, control=panel_off(osc_replay=rec))
    try:
        t0 = time.monotonic()
        assert pump_until(show, lambda: show.store.target("pre/blur") == 1.0)
        assert pump_until(show, lambda: show.store.target("pre/blur") == 2.0)
        assert time.monotonic() - t0 >= 0.6  # never before its time (a lower bound only)
    finally:
        show.close()


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from installation.cli import main

    rc = main(["run", str(show_file(tmp_path)), "--headless", "--frames", "1", "--osc-replay",
               str(tmp_path / "none.jsonl")])
    assert rc == 2


def test_cli_run_with_osc_flags(tmp_path: Path) -> None:
    fb = Listener()
    try:
        r = subprocess.run([sys.executable, "-m", "installation.cli", "run", str(show_file(tmp_path)), "--headless",
                            "--frames", "20", "--osc-port", "0", "--osc-feedback", f"127.0.0.1:{fb.port}",
                            "--state", str(tmp_path / "st"), "--set", "pre/blur=2"],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 2
        while not fb.got("/pre/blur") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fb.got("/pre/blur") == [(2.0,)]
        assert (tmp_path / "st/logs/installation.log").exists()
        bad = subprocess.run([sys.executable, "-m", "installation.cli", "run", str(show_file(tmp_path)),
                              "--headless", "--frames", "1", "--osc-feedback", "nohost:"],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert bad.returncode == 2 and "HOST:PORT" in bad.stderr
    finally:
        fb.close()


def test_walk_packet_rejects_garbage_and_flattens_bundles() -> None:
    from installation.control.osc.wire import Malformed, walk_packet

    bad_size = b"#bundle\0" + b"\0" * 8 + b"\0\0\0\x05/ab\0"
    for junk in (b"", b"hello", b"/a\0", b"/a\0\0\0,zz\0\0", b"#bundle\0", bad_size, b"/a\0\0\0,i\0\0\0\0"):
        with pytest.raises(Malformed):
            list(walk_packet(junk))
    b = OscBundleBuilder(0)
    b.add_content(OscMessageBuilder("/x").build())
    outer = OscBundleBuilder(0)
    outer.add_content(b.build())
    outer.add_content(OscMessageBuilder("/y").build())
    assert [m.address for m in walk_packet(outer.build().dgram)] == ["/x", "/y"]
    assert oscwire.judge(default_registry()["preset/recall"], [0]) is None


# ---- feedback targets that come late or move ----------------------------------------------------------------

class HostsFile:
    """A resolver over a hosts file the test writes: this machine's resolver can't be changed by a test
    (HOSTALIASES only maps to names DNS resolves, and DNS here doesn't resolve localhost). The show's own
    code path takes it as its `resolve` function; everything else (threads, UDP) is real."""

    def __init__(self, path: Path, delay_s: float = 0.0) -> None:
        self.path, self.delay_s, self.calls = path, delay_s, 0
        path.write_text("")

    def __call__(self, host: str) -> str:
        self.calls += 1
        time.sleep(self.delay_s)  # a slow DNS server: the show's loop must not wait for it
        for line in self.path.read_text().splitlines():
            ip, *names = line.split()
            if host in names:
                return ip
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def _late_control(show: Show, target: str, resolve: Callable[[str], str] | None = None) -> OscControl:
    settings = oscwire.OscSettings(host="127.0.0.1", port=0, oscquery_port=0,
                                   feedback=[parse_target(target)])
    c = OscControl(show.handle, settings, resolve=resolve)
    show.handle.add(c)
    return c


def test_a_feedback_target_that_resolves_late_gets_every_value_without_the_loop_waiting(tmp_path: Path) -> None:
    show = make_show(tmp_path, control=panel_off(osc=False))
    listener = Listener()
    hosts = HostsFile(tmp_path / "hosts", delay_s=0.5)
    c = _late_control(show, f"studio-pad:{listener.port}", hosts)
    try:
        slowest = 0.0
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # ~2 failed lookups of 0.5 s each, back-off 1 s then 2 s
            t = time.monotonic()
            show.update()
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.005)
        assert hosts.calls >= 2 and not listener.messages
        assert slowest < hosts.delay_s / 2, f"an update waited for the resolver ({slowest:.2f} s)"
        assert any("studio-pad" in line and "not resolved" in line for line in c.hud(show.handle)), c.hud(show.handle)
        assert c.summary()["feedback"][f"studio-pad:{listener.port}"]["resolve_failures"] >= 2

        hosts.path.write_text("127.0.0.1 studio-pad\n")  # the venue's network comes up
        settable = {p.address for p in show.registry.values() if p.kind != "trigger"}
        assert pump_until(show, lambda: settable <= {a for a, _ in listener.messages}, timeout=15), \
            "once resolved, the late controller gets every value"
        assert not any("studio-pad" in line for line in c.hud(show.handle))
        show.store.set("colour/brightness", 0.5, source="api")
        wait_for(show, listener, "/colour/brightness", lambda a: a == (0.5,))
    finally:
        show.close()
        listener.close()


def test_a_target_whose_sends_fail_is_held_with_back_off_and_counted(tmp_path: Path) -> None:
    show = make_show(tmp_path, control=panel_off(osc=False))
    c = _late_control(show, "255.255.255.255:9001")  # broadcast without SO_BROADCAST: every send fails (EACCES)
    try:
        t_end = time.monotonic() + 3.5
        while time.monotonic() < t_end:
            show.store.set("colour/brightness", 0.3 + 0.1 * (int(time.monotonic() * 20) % 5), source="api")
            show.update()
            time.sleep(0.01)
        failures = c.summary()["feedback"]["255.255.255.255:9001"]["send_failures"]
        assert 2 <= failures <= 4, f"held 1 s, 2 s, ...: a few tries, not one per frame ({failures})"
        assert any("255.255.255.255:9001 send failed" in line for line in c.hud(show.handle)), c.hud(show.handle)
    finally:
        show.close()


def test_allow_list_rules_and_where_the_settings_come_from(tmp_path: Path) -> None:
    import ipaddress

    from installation.control.access import Gate, parse_allow

    assert parse_allow(["10.0.0.0/8", "any"]) is None
    gate = Gate(parse_allow([]), writes=True, grabs=False)
    for sender in ("127.0.0.1", "10.2.3.4", "172.20.1.1", "192.168.5.5", "169.254.1.1", "::1", "fe80::1%eth0",
                   "fd00::5", "::ffff:10.0.0.5"):
        assert gate.allowed(sender), sender
    for sender in ("8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8", "8.8.8.8"):
        assert not gate.allowed(sender), sender
    assert gate.refused == {"8.8.8.8": 2, "172.32.0.1": 1, "2001:db8::1": 1, "::ffff:8.8.8.8": 1}
    assert gate.write_refusal("preset/save") == "" and "allow_writes" in gate.write_refusal("show/grab")
    assert gate.write_refusal("pre/blur") == ""

    cfg = load_show(show_file(tmp_path, extra='allow = ["10.0.0.0/8"]'))
    s = oscwire.OscSettings.resolve(cfg, RunOptions())
    assert s.allow == [ipaddress.ip_network("10.0.0.0/8")] and s.writes and not s.grabs  # rehearse-like
    s = oscwire.OscSettings.resolve(cfg, RunOptions(control=ControlOptions(osc_allow=("192.168.1.20",)), venue=True))
    assert s.allow == [ipaddress.ip_network("192.168.1.20/32")], "--osc-allow replaces the show's list"
    assert not s.writes and not s.grabs, "`run` refuses writes unless the show allows them"
    cfg.osc.allow_writes = True
    s = oscwire.OscSettings.resolve(cfg, RunOptions(venue=True))
    assert s.writes and s.grabs


# ---- UDP and the token ------------------------------------------------------------------------------------

def _token_show(tmp_path: Path, udp: str, name: str) -> tuple[Path, int]:
    qport = free_port(socket.SOCK_STREAM)
    f = small_show(tmp_path, name=name, source=SYNTHETIC + "\nfps = 30", file=f"{name}.toml",
                   osc=f'host = "127.0.0.1"\nport = 0\noscquery_port = {qport}\n{udp}',
                   tail='[web]\nport = 0\ntoken = "sesame-1234"\n')
    return f, qport


@pytest.mark.parametrize("udp, on", [("", False), ("udp = false", False), ("udp = true", True)])
def test_a_token_turns_udp_off_unless_the_show_says_so_and_host_info_follows(tmp_path: Path, udp: str,
                                                                            on: bool) -> None:
    import urllib.request

    f, qport = _token_show(tmp_path, udp, "tok")
    show = Show(load_show(f), RunOptions(headless=True, state=tmp_path / "state", control=panel_off())).build()
    try:
        c = control(show)
        info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{qport}/?HOST_INFO", timeout=5).read())
        if on:
            assert c.server is not None and c.port > 0
            assert info["OSC_PORT"] == c.port and info["OSC_TRANSPORT"] == "UDP"
            SimpleUDPClient("127.0.0.1", c.port).send_message("/colour/brightness", 0.25)
            assert pump_until(show, lambda: show.store.target("colour/brightness") == 0.25)
        else:
            assert c.server is None and c.port == 0, "no UDP socket is opened"
            assert not {"OSC_PORT", "OSC_IP", "OSC_TRANSPORT"} & set(info), info
            assert "osc: UDP off (values change over the web only)" in show.hud_text()
    finally:
        show.close()
    r = subprocess.run([sys.executable, "-m", "installation.cli", "check", str(f)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "token covers: changing values from the panel and OSCQuery's WebSocket" in r.stdout
    assert "token does not cover: looking" in r.stdout
    if on:
        assert "! token does not cover UDP OSC, which is on ([osc] udp = true)" in r.stdout
        assert "osc in: UDP 127.0.0.1:a free port" in r.stdout
    else:
        assert "osc in: UDP off" in r.stdout and "token: UDP OSC is off" in r.stdout


def test_without_a_token_check_says_every_allowed_sender_may_change_values(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "installation.cli", "check", str(show_file(tmp_path))],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "token: none ([web] token unset): every allowed sender may change values" in r.stdout
    assert "osc in: UDP 127.0.0.1" in r.stdout


# ---- models by name ---------------------------------------------------------------------------------------

def test_a_model_path_from_any_source_is_refused_by_the_slot_and_shown_nowhere_but_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tests.scenarios.conftest import flat_model

    model = flat_model(tmp_path / "models" / "grey", (128, 128, 128))
    secret = flat_model(tmp_path / "private" / "secret", (255, 0, 0))  # real, loadable, outside the show's folders
    cfg = load_show(small_show(tmp_path, name="slotpaths", model=model, source=SYNTHETIC + "\nfps = 30",
                               osc='host = "127.0.0.1"\nport = 0\noscquery_port = 0'))
    show = Show(cfg, RunOptions(headless=True, state=tmp_path / "state", control=panel_off(),
                                    realtime=True)).build()
    try:
        for value, refused in ((str(secret), 1), ("../private/secret", 2), ("secret.onnx", 3), ("nosuch", 3)):
            show.store.set("model/select", value, source="preset")  # as a preset's recall sets it: no door
            assert pump_until(show, lambda n=refused: show.store.target("model/select") == "" and
                              bool(show.slot.error) and show.stats.counters["model_select_refused"] == n), \
                show.slot.error
            assert str(tmp_path) not in show.slot.error and "private" not in show.slot.error
            if refused < 3 or value == "secret.onnx":
                assert "swap to a path failed: a model is selected by its name" in show.slot.error
            hud = "\n".join(show.hud_text())
            assert str(tmp_path) not in hud
        assert "no such model in the show's model folders" in show.slot.error
        assert show.slot.model is not None and show.slot.model.name == "grey", "the playing model plays on"
        assert show.stats.last_fault.endswith("no such model in the show's model folders")
        logged = caplog.text
        assert "never by a path" in logged, "the refusal is in the log"
        assert f"in {tmp_path / 'models'}" in logged, "the full reason, with the machine's folders, is in the log"
    finally:
        show.close()
