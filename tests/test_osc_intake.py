"""The intake (control/osc/intake.py): the receiver thread's door and waiting room, on its own and behind
the UDP server it is handed to (control/osc/server.py), over a real socket on loopback."""

from __future__ import annotations

import socket

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from installation.app import default_registry
from installation.control.access import Gate, parse_allow
from installation.control.osc.intake import Intake
from installation.control.osc.server import OscServer
from installation.control.osc.wire import MAX_PENDING_TRIGGERS, build_dgram


def _intake(writes: bool = True, allow: list[str] | None = None,
            note_senders: bool = False) -> tuple[Intake, list[int]]:
    wakes: list[int] = []
    gate = Gate(parse_allow(allow or []), writes, False)
    return Intake(default_registry(), gate, lambda: wakes.append(1), note_senders), wakes


def _bundle(*messages: tuple[str, object]) -> bytes:
    b = OscBundleBuilder(IMMEDIATELY)
    for address, value in messages:
        m = OscMessageBuilder(address)
        m.add_arg(value)
        b.add_content(m.build())
    return b.build().dgram


def test_the_newest_value_per_address_waits_and_one_wake_serves_a_batch() -> None:
    intake, wakes = _intake()
    intake.receive(build_dgram("/pre/blur", 2.0), ("127.0.0.1", 5000))
    intake.receive(build_dgram("/pre/blur", 3.0), ("127.0.0.1", 5000))
    intake.receive(build_dgram("/mix/mode", "camera"), None)
    intake.receive(build_dgram("/sync"), ("127.0.0.1", 5001))
    assert wakes == [1]  # the drainer is woken once, not per message
    batch = intake.drain()
    assert [(i.param.name, i.value) for i in batch.values] == [("pre/blur", 3.0), ("mix/mode", "camera")]
    assert batch.values[0].sender == ("127.0.0.1", 5000) and batch.syncs == {("127.0.0.1", 5001)}
    c = intake.counters.snapshot()
    assert c["datagrams"] == 4 and c["accepted"] == 4 and c["coalesced"] == 1 and c["rejected"] == 0
    assert intake.drain().values == []
    intake.receive(build_dgram("/pre/blur", 1.0), None)
    assert wakes == [1, 1]  # drained: the next message wakes again


def test_a_bundle_arrives_whole_and_a_clamped_value_is_marked_altered() -> None:
    intake, _ = _intake()
    intake.receive(_bundle(("/pre/blur", 1e9), ("/colour/brightness", 1.0)), None)
    values = {i.param.name: i for i in intake.drain().values}
    assert set(values) == {"pre/blur", "colour/brightness"}
    assert values["pre/blur"].altered and values["pre/blur"].value < 1e9
    assert not values["colour/brightness"].altered


def test_bad_input_is_refused_counted_and_never_waits() -> None:
    intake, wakes = _intake()
    intake.receive(b"\x00garbage", None)
    intake.receive(build_dgram("/no/such", 1.0), None)
    intake.receive(build_dgram("/pre/blur", "5"), None)  # text for a number: the one type rule
    intake.receive(build_dgram("/seg/key_*", 0.5), None)  # a pattern sets every value it matches
    intake.receive(build_dgram("/preset/*", 1), None)  # ... but never fires a trigger (recall, save): morph_s only
    batch = intake.drain()
    reasons = intake.counters.snapshot()["reasons"]
    assert reasons == {"malformed": 1, "unknown address": 1, "bad value": 1}, reasons
    assert sorted(i.param.name for i in batch.values) == [
        "preset/morph_s", "seg/key_b", "seg/key_g", "seg/key_lightness", "seg/key_r"]
    assert wakes == [1]


def test_triggers_are_kept_in_order_up_to_the_flood_limit_and_writes_follow_the_gate() -> None:
    intake, _ = _intake()
    for _ in range(MAX_PENDING_TRIGGERS + 5):
        intake.receive(build_dgram("/preset/recall", 2), None)
    batch = intake.drain()
    assert len(batch.values) == MAX_PENDING_TRIGGERS
    assert intake.counters.snapshot()["reasons"] == {"flood": 5}
    locked, _ = _intake(writes=False)
    locked.receive(build_dgram("/preset/save", 3), None)
    assert locked.drain().values == [] and locked.counters.snapshot()["reasons"] == {"write refused": 1}


def test_senders_are_noted_only_when_feedback_goes_to_them() -> None:
    quiet, _ = _intake()
    quiet.receive(build_dgram("/pre/blur", 1.0), ("127.0.0.1", 6000))
    assert quiet.recent_senders() == []
    noting, _ = _intake(note_senders=True)
    noting.receive(build_dgram("/pre/blur", 1.0), ("127.0.0.1", 6000))
    noting.receive(build_dgram("/pre/blur", 2.0), ("127.0.0.1", 6001))
    assert noting.recent_senders() == [("127.0.0.1", 6000), ("127.0.0.1", 6001)]


def test_the_udp_server_hands_real_datagrams_to_its_intake_and_keeps_strangers_out() -> None:
    intake, wakes = _intake()
    server = OscServer(("127.0.0.1", 0), intake)
    server.timeout = 0.5
    port = server.server_address[1]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(build_dgram("/pre/blur", 4.0), ("127.0.0.1", port))
            server.handle_request()
            batch = intake.drain()
            assert [(i.param.name, i.value) for i in batch.values] == [("pre/blur", 4.0)]
            assert batch.values[0].sender == ("127.0.0.1", tx.getsockname()[1])
        closed, _ = _intake(allow=["10.0.0.0/8"])  # loopback is not on this allow-list
        server.intake = closed
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(build_dgram("/pre/blur", 4.0), ("127.0.0.1", port))
            server.handle_request()
        assert closed.drain().values == []
        c = closed.counters.snapshot()
        assert c["reasons"] == {"not allowed": 1} and c["messages"] == 0
    finally:
        server.server_close()
    assert wakes == [1]
