"""Hostile OSC input while a real headless show runs: malformed datagrams, random bytes, wrong types,
NaN and infinities, bundles within bundles, floods. The loop must keep presenting and no parameter may
ever leave its range."""

from __future__ import annotations

import itertools
import logging
import math
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_message_builder import OscMessageBuilder
from test_osc import assert_in_range, control, make_show, pump_until, step

from installation.app import default_registry

ADDRESSES = [p.address for p in default_registry().values()] + ["/sync", "/", "/pre", "/pre/", "/nope/x",
                                                                "/pre/*", "/*/*", "/{pre,seg}/blur", "/[", "//"]

_chars = st.characters(blacklist_categories=("Cs",))  # UTF-8 can't carry lone surrogates
_osc_args = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(_chars, max_size=20),
    st.booleans(),
    st.none(),
    st.binary(min_size=1, max_size=16),
)


def _message(address: str, args: list[object]) -> bytes:
    m = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, float) and not math.isnan(a) and abs(a) > 3.4e38:
            m.add_arg(a, "d")  # beyond float32: a double
        else:
            m.add_arg(a)
    return m.build().dgram


_messages = st.builds(_message, st.one_of(st.sampled_from(ADDRESSES), st.text(_chars, min_size=1, max_size=24).map(
    lambda s: "/" + s.replace("\0", ""))), st.lists(_osc_args, max_size=3))


NTP_EPOCH = 2208988800  # seconds from 1900 (OSC timetags) to 1970


def _bundle(timetag: int, elements: list[bytes]) -> bytes:
    out = b"#bundle\0" + struct.pack(">Q", timetag)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


@st.composite
def _bundles(draw: st.DrawFn, depth: int = 0) -> bytes:
    now = int(time.time()) + NTP_EPOCH
    timetag = draw(st.sampled_from([1, (now - 10) << 32, (now + 3600) << 32]))  # immediately, past, far future
    elements = []
    for _ in range(draw(st.integers(0, 4))):
        nested = depth < 2 and draw(st.booleans())
        elements.append(draw(_bundles(depth + 1)) if nested else draw(_messages))
    return _bundle(timetag, elements)


@st.composite
def _mangled(draw: st.DrawFn) -> bytes:
    """A valid datagram, then cut short, bit-flipped, or with a lying size or type tag."""
    data = bytearray(draw(st.one_of(_messages, _bundles())))
    how = draw(st.sampled_from(["cut", "flip", "size", "tag", "pad"]))
    if how == "cut" and len(data) > 1:
        del data[draw(st.integers(1, len(data) - 1)):]
    elif how == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "size" and data.startswith(b"#bundle") and len(data) >= 20:
        data[16:20] = struct.pack(">i", draw(st.integers(-(2**31), 2**31 - 1)))
    elif how == "tag":
        comma = data.find(b",")
        if comma > 0:
            data[comma + 1:comma + 2] = draw(st.sampled_from([b"x", b"[", b"]", b"I", b"\xff"]))
    else:
        data += draw(st.binary(max_size=7))
    return bytes(data)


_datagrams = st.one_of(_messages, _bundles(), _mangled(), st.binary(max_size=64),
                       st.binary(max_size=16).map(lambda b: b"/" + b),
                       st.binary(max_size=16).map(lambda b: b"#bundle\0" + b))


def test_fuzzed_input_never_breaks_the_loop_or_a_range(tmp_path: Path) -> None:
    show = make_show(tmp_path)
    try:
        c = control(show)
        target = ("127.0.0.1", c.port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        presented: list[int] = []

        @settings(max_examples=250, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(st.lists(_datagrams, min_size=1, max_size=6))
        def check(datagrams: list[bytes]) -> None:
            for d in datagrams:
                sock.sendto(d, target)
            step(show, 2)
            assert_in_range(show)
            presented.append(show.stats.counters["frames_presented"])

        check()
        sock.close()
        # the receiver is still alive and well: a plain message still lands
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(OscMessageBuilder("/pre/blur").build().dgram, target)  # no argument: rejected
            m = OscMessageBuilder("/hud/show")
            m.add_arg(True)
            s.sendto(m.build().dgram, target)
        assert pump_until(show, lambda: show.store.target("hud/show") is True)
        counts = c.counters.snapshot()
        assert counts["reasons"]["malformed"] > 0 and counts["reasons"]["unknown address"] > 0
        assert counts["reasons"]["bad value"] > 0 and counts["accepted"] > 0
        assert presented[-1] > presented[0]  # it kept presenting all along
        assert show.stats.faults.get("control", 0) == 0  # nothing ever raised inside update()
        assert_in_range(show)
    finally:
        show.close()


FLOODER = r"""
import socket, sys, time
from pythonosc.osc_message_builder import OscMessageBuilder

def msg(address, *args):
    m = OscMessageBuilder(address)
    for a in args:
        m.add_arg(a)
    return m.build().dgram

port, seconds = int(sys.argv[1]), float(sys.argv[2])
dgrams = [msg("/colour/brightness", i / 100.0) for i in range(200)]
dgrams += [msg("/nope/nothing", 1.0), msg("/pre/blur", float("nan")), b"\x00garbage\xff", b"/pre/blur\0\0\0,f\0\0"]
sent = 0
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for d in dgrams:
            s.sendto(d, ("127.0.0.1", port))
            sent += 1
        time.sleep(0.001)
print(sent)
"""


def test_a_flood_is_absorbed_while_the_show_runs(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """Thousands of datagrams a second from another process (as a real flood would come) while Show.run()
    runs on the main thread."""
    show = make_show(tmp_path, seconds=60.0)
    c = control(show)
    result: dict[str, int] = {}

    def flood() -> None:
        n0 = show.stats.counters["frames_presented"]
        p = subprocess.run([sys.executable, "-c", FLOODER, str(c.port), "2.0"], capture_output=True, text=True,
                           timeout=60)
        result["sent"] = int(p.stdout.strip() or 0)
        result["frames"] = show.stats.counters["frames_presented"] - n0
        time.sleep(0.3)
        show.stop()

    caplog.set_level(logging.WARNING, logger="installation.osc")
    th = threading.Thread(target=flood, daemon=True)
    th.start()
    show.run()  # the real loop, on the main thread; it closes the show when stopped
    th.join(5)
    counts = c.counters.snapshot()
    assert result["sent"] > 1000, result
    assert result["frames"] >= 1, result  # the loop kept presenting through the flood
    assert counts["coalesced"] > 0  # many values for one address in one frame: only the newest applied
    assert counts["reasons"]["unknown address"] > 1 and counts["reasons"]["malformed"] > 1
    assert counts["reasons"]["bad value"] > 1
    # logged at most once a second per address, not once per message
    by_address: dict[str, list[float]] = {}
    for r in caplog.records:
        if r.name == "installation.osc" and " dropped: " in r.getMessage():
            by_address.setdefault(r.getMessage().split()[1], []).append(r.created)
    assert set(by_address) >= {"/nope/nothing", "/pre/blur", "(malformed)"}, by_address
    for address, times in by_address.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g >= 0.99 for g in gaps), (address, gaps)
    assert_in_range(show)
    assert 0.0 <= show.store.target("colour/brightness") <= 2.0
