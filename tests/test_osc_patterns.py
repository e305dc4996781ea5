"""OSC address patterns: our automaton (control/osc/patterns.py) matches what python-osc's Dispatcher matches on
ordinary patterns, over the real registry's addresses, and stays small and quick on hostile ones where
python-osc's regular expressions backtrack for minutes."""

from __future__ import annotations

import random
import threading
import time

import pytest
from pythonosc.dispatcher import Dispatcher

from installation.app import default_registry
from installation.control.osc.patterns import MAX_ALTERNATIVES, MAX_CHARS, Matcher, Pattern, PatternRefused

ADDRESSES = [p.address for p in default_registry().values()]

ORDINARY = ["/*/*", "/pre/*", "/seg/key_*", "/mix/amount", "/*/a*", "/?re/blur", "/[ps]*/*", "/[!p]*/*",
            "/{pre,mix}/*", "/p[a-r]e/bl?r", "/*", "/*/*/*", "/{seg,pre}/{blur,key_*}", "/[a-c]*/*t*",
            "/mix/{amount,,x}", "/*/*e", "/[m-]*/*", "/colour/*", "/*/{amount,brightness}", "/??x/*", "/*x/*",
            "/[!a-m]*/[a-f]*", "/show/black?ut", "/{show,colour}/*[st]", "/model/*", "/nothing/*"]


def python_osc(pattern: str) -> set[str]:
    d = Dispatcher()
    for a in ADDRESSES:
        d.map(a, print, a)
    return {h.args[0] for h in d.handlers_for_address(pattern) if h.args}


@pytest.mark.parametrize("pattern", ORDINARY)
def test_ordinary_patterns_match_what_python_osc_matches(pattern: str) -> None:
    assert set(Matcher(ADDRESSES).match(pattern)) == python_osc(pattern)


def test_every_address_matches_itself_and_only_itself() -> None:
    m = Matcher(ADDRESSES)
    for a in ADDRESSES:
        assert m.match(a) == (a,)


def test_a_part_never_spans_a_slash() -> None:
    m = Matcher(["/a/b", "/ab"])
    assert m.match("/a?b") == ()
    assert m.match("/a*") == ("/ab",)
    assert m.match("/a[!x]b") == ()
    assert m.match("/a[/]b") == ()
    assert m.match("/a[+-0]b") == (), "a range that spans '/' still takes one character of one part"
    assert m.match("/{a/b,zz}") == ("/a/b",)  # a literal choice may name a slash, as python-osc's does


HOSTILE = ["/*/**********************q",  # the issue's datagram: 50 s of backtracking in python-osc
           "/" + "[\0-\uffff]" * 50,  # wide ranges stay ranges: nothing expanded
           "/*/" + "*?" * 100 + "q",
           "/" + "[a-z]*" * 40 + "q",
           "/{" + ",".join("abcdefgh") + "}/{" + ",".join("abcdefgh") + "}" + "[a-z]" * 30]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_hostile_patterns_stay_small_and_match_nothing(pattern: str) -> None:
    p = Pattern(pattern)
    assert p.states <= MAX_ALTERNATIVES * (len(pattern) + 1)
    if pattern.startswith("/*/**"):
        assert p.states < 10, "a run of stars is one state"
    assert Matcher(ADDRESSES).match(pattern) == ()


def test_the_issue_pattern_does_not_hold_the_process() -> None:
    """The issue's 22 stars froze a show for over 50 s; while it is matched here another thread keeps running
    (the matcher is plain Python: it yields the GIL) and the match ends long before python-osc's would."""
    ticks = 0
    stop = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    try:
        m = Matcher(ADDRESSES)
        for n in range(200):  # distinct patterns: no cache hit
            assert m.match("/*/" + "*" * 22 + "q" * (n % 7 + 1) + "x" * (n // 7)) == ()
    finally:
        stop.set()
        t.join()
    assert ticks > 0


@pytest.mark.parametrize("pattern, why", [
    ("/" + "a" * (MAX_CHARS + 1), "longer than"),
    ("/{a,b,c,d}/{a,b,c,d}/{a,b,c,d,e}", "alternatives"),
    ("/pre/[abc", "without ]"),
    ("/pre/{abc", "without }"),
    ("/pre/abc]", "without its opening"),
    ("/pre/[z-a]", "backwards"),
    ("/{" + ",".join("abcdefgh") + "}/{" + ",".join("abcdefgh") + "}" + "*?" * 40, "states"),
])
def test_patterns_beyond_the_bounds_are_refused(pattern: str, why: str) -> None:
    m = Matcher(ADDRESSES)
    for _ in range(2):  # the second time from the cache, refused the same way
        with pytest.raises(PatternRefused, match=why):
            m.match(pattern)


def _random_pattern(rng: random.Random) -> str:
    """An ordinary pattern a person might send: a real address with a few parts made wild."""
    address = rng.choice(ADDRESSES)
    out = ""
    i = braces = 0
    while i < len(address):
        c = address[i]
        r = rng.random()
        if c == "/" or r < 0.75:
            out += c
        elif r < 0.82:
            out += "?"
        elif r < 0.88:
            out += "*"
            i += rng.randrange(0, 4)
        elif r < 0.94:
            lo, hi = sorted((c, rng.choice("abcdefghijklmnopqrstuvwxyz_")))
            out += rng.choice([f"[{lo}-{hi}]", f"[!{lo}-{hi}]", f"[{c}xy]", f"[!{c}]"])
        elif braces < 2:  # 3 x 3 choices: a person's pattern, far below the bound
            braces += 1
            out += "{" + ",".join([c, rng.choice("aeiou"), c + rng.choice("rst")]) + "}"
        else:
            out += c
        i += 1
    return out


def test_random_ordinary_patterns_match_what_python_osc_matches() -> None:
    rng = random.Random(23)
    m = Matcher(ADDRESSES)
    d = Dispatcher()
    for a in ADDRESSES:
        d.map(a, print, a)
    for _ in range(400):
        pattern = _random_pattern(rng)
        theirs = {h.args[0] for h in d.handlers_for_address(pattern) if h.args}
        assert set(m.match(pattern)) == theirs, pattern
