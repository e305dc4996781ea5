"""OSC as a controller sees it: the real command, a real UDP receiver. At start and on /sync every
settable parameter of the registry arrives; a change made by one controller reaches the feedback target."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from pythonosc.osc_packet import OscPacket

from installation.app import default_registry
from installation.control.osc.wire import build_dgram
from tests.conftest import small_show
from tests.scenarios.conftest import free_udp_port, osc_send, start_cli


def _receiver() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    return s


def _collect(sock: socket.socket, seconds: float, until: set[str] | None = None) -> dict[str, list[tuple]]:
    """Every message that arrives within `seconds` (or until every address in `until` came)."""
    got: dict[str, list[tuple]] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        for m in OscPacket(data).messages:
            got.setdefault(m.message.address, []).append(tuple(m.message.params))
        if until is not None and until <= set(got):
            break
    return got


def _settable() -> set[str]:
    return {p.address for p in default_registry().values() if p.kind != "trigger"}


def test_feedback_and_sync_send_every_settable_parameter(tmp_path: Path) -> None:
    settable = _settable()
    assert len(settable) > 50  # the registry as the scenario knows it, not an empty set that passes
    feedback, asker = _receiver(), _receiver()
    port = free_udp_port()
    show = small_show(tmp_path, name="fb", osc='host = "127.0.0.1"\noscquery_port = 0',
                      tail='[params]\n"colour/contrast" = 1.5\n"display/rotate" = "90"\n"mix/mode" = "camera"')
    proc = start_cli(["rehearse", show, "--headless", "--seconds", "30", "--osc-port", port,
                      "--osc-feedback", f"127.0.0.1:{feedback.getsockname()[1]}"], tmp_path)
    try:
        at_start = _collect(feedback, 6.0, until=settable)
        assert settable <= set(at_start), f"missing at start: {sorted(settable - set(at_start))}"
        assert not {p.address for p in default_registry().values() if p.kind == "trigger"} & set(at_start)
        # the show's values, as a controller reads them: floats as they are, choices as their index
        assert at_start["/colour/brightness"][-1] == (1.0,) and at_start["/colour/contrast"][-1] == (1.5,)
        assert at_start["/display/rotate"][-1] == (1,) and at_start["/mix/mode"][-1] == (4,)

        # a /sync from another controller: everything goes to it as well (the sender's own address)
        asker.sendto(build_dgram("/sync"), ("127.0.0.1", port))
        synced = _collect(asker, 4.0, until=settable)
        assert settable <= set(synced), f"missing after /sync: {sorted(settable - set(synced))}"
        assert {a: synced[a][-1] for a in settable} == {a: at_start[a][-1] for a in settable}

        _collect(feedback, 0.5)  # what /sync sent the feedback target too
        osc_send(port, "/colour/brightness", 5.0)  # clamped to 2: the feedback says what is used
        changed = _collect(feedback, 3.0, until={"/colour/brightness"})
        assert changed.get("/colour/brightness", [None])[0] == (2.0,), changed.get("/colour/brightness")
        proc.terminate()  # SIGTERM: the show stops cleanly, as under systemd
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        feedback.close()
        asker.close()
    assert proc.returncode == 0, err

