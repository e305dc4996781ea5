"""OSC address patterns matched against the registry's addresses without a regular expression.

python-osc turns a pattern into a Python regular expression (`*` -> `[^/]*`), and the regex engine
backtracks: 22 stars against one 20-character part froze a show for over 50 s while holding the GIL, so
no thread of the process ran (docs/security.md). Here a pattern becomes a small automaton instead, run
bit-parallel (Shift-And, one Python int holds every state), so matching costs time linear in the address
whatever the pattern holds, and the answer per pattern is cached.

The rule (OSC 1.0's, as python-osc reads it for ordinary patterns): `?` one character, `*` any run of
characters, `[abc]` `[a-z]` one of a set, `[!abc]` one not in it, `{foo,bar}` one of the strings. No
wildcard and no set matches `/`: a pattern matches part by part. Patterns longer than MAX_CHARS, with more
than MAX_ALTERNATIVES expansions of their `{...}` or with an unclosed `[` or `{` match nothing and raise
PatternRefused, which the caller counts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

PATTERN_CHARS = frozenset("*?[]{}")
MAX_CHARS = 256  # the registry's longest address is under 40: a longer pattern is not a person's
MAX_ALTERNATIVES = 64  # product of the {...} choices: /{a,b}/{c,d,e} is 6
MAX_STATES = 4096  # bits of the automaton, all alternatives together
CACHE = 256


class PatternRefused(ValueError):
    """A pattern this matcher won't run (too long, too many alternatives, malformed): counted by the caller."""


# A token: "*", or a set: (negate, characters, ranges) accepting one character in it (or, negated, not in it).
_Set = tuple[bool, frozenset[str], tuple[tuple[str, str], ...]]
_Token = str | _Set
_ANY: _Token = (True, frozenset("/"), ())


def _literal(c: str) -> _Set:
    return (False, frozenset(c), ())


def _char_set(pattern: str, i: int) -> tuple[_Set, int]:
    """The set starting after `[` at i, and the index after its `]`. Ranges stay ranges: `[\0-\uffff]`
    costs nothing to hold."""
    negate = i < len(pattern) and pattern[i] == "!"
    i += negate
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    start = i
    while i < len(pattern) and pattern[i] != "]":
        c = pattern[i]
        if c == "-" and i > start and i + 1 < len(pattern) and pattern[i + 1] != "]":
            lo, hi = pattern[i - 1], pattern[i + 1]
            if lo > hi:
                raise PatternRefused(f"a range [{lo}-{hi}] backwards")
            ranges.append((lo, hi))
            i += 2
            continue
        chars.add(c)
        i += 1
    if i >= len(pattern):
        raise PatternRefused("[ without ]")
    chars.discard("/")  # a set is one character of one part: never a '/' (ranges skip it when matching)
    return (negate, frozenset(chars), tuple(ranges)), i + 1


def _chains(pattern: str) -> list[list[_Token]]:
    """The pattern as plain chains of tokens, one per choice of its {...} (their product, bounded)."""
    chains: list[list[_Token]] = [[]]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            for ch in chains:
                if not ch or ch[-1] != "*":  # ** is *: a run of stars is one state, not many
                    ch.append("*")
            i += 1
        elif c == "?":
            for ch in chains:
                ch.append(_ANY)
            i += 1
        elif c == "[":
            tok, i = _char_set(pattern, i + 1)
            for ch in chains:
                ch.append(tok)
        elif c == "{":
            end = pattern.find("}", i)
            if end < 0:
                raise PatternRefused("{ without }")
            words = pattern[i + 1:end].split(",")
            if len(chains) * len(words) > MAX_ALTERNATIVES:
                raise PatternRefused(f"more than {MAX_ALTERNATIVES} alternatives")
            chains = [[*ch, *(_literal(x) for x in w)] for ch in chains for w in words]
            i = end + 1
        elif c in "]}":
            raise PatternRefused(f"{c} without its opening")
        else:
            tok = _literal(c)
            for ch in chains:
                ch.append(tok)
            i += 1
        if len(chains) * (len(chains[0]) + 1) > MAX_STATES:  # chains grow together: the first stands for all
            raise PatternRefused(f"more than {MAX_STATES} states")
    if sum(len(ch) + 1 for ch in chains) > MAX_STATES:
        raise PatternRefused(f"more than {MAX_STATES} states")
    return chains


class Pattern:
    """One compiled pattern. Bit k of a chain is 'its first k tokens have matched'; all chains side by side in
    one int, so one step of the address advances every state of every alternative at once."""

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_CHARS:
            raise PatternRefused(f"longer than {MAX_CHARS} characters")
        self.text = pattern
        chains = _chains(pattern)
        self._by_token: dict[_Token, int] = {}  # token -> the bits it leads into
        self._start = self._end = 0
        bit = 0
        self.states = sum(len(ch) + 1 for ch in chains)  # the work per address character is bounded by this
        for chain in chains:
            self._start |= 1 << bit
            for tok in chain:
                bit += 1
                self._by_token[tok] = self._by_token.get(tok, 0) | 1 << bit
            self._end |= 1 << bit
            bit += 1
        self._stars = self._by_token.get("*", 0)
        self._accepts: dict[str, int] = {}

    def _accept_mask(self, c: str) -> int:
        """The bits whose token takes character c."""
        m = self._accepts.get(c)
        if m is None:
            m = 0
            for tok, bits in self._by_token.items():
                if tok == "*":
                    ok = c != "/"
                else:
                    negate, chars, ranges = tok  # type: ignore[misc]
                    inside = c in chars or (c != "/" and any(lo <= c <= hi for lo, hi in ranges))
                    ok = (not inside and c != "/") if negate else inside
                if ok:
                    m |= bits
            self._accepts[c] = m
        return m

    def _close(self, d: int) -> int:
        """A star also matches nothing: a state before a star is also the state after it."""
        return d | ((d << 1) & self._stars)

    def matches(self, address: str) -> bool:
        d = self._close(self._start)
        for c in address:
            acc = self._accept_mask(c)
            # advance by one token, or stay on a star that takes this character too
            d = self._close(((d << 1) & acc) | (d & self._stars & acc))
            if not d:
                return False
        return bool(d & self._end)


class Matcher:
    """A fixed set of addresses, and the ones each pattern matches (cached per pattern text)."""

    def __init__(self, addresses: Iterable[str]) -> None:
        self.addresses = tuple(addresses)
        self._cache: OrderedDict[str, tuple[str, ...] | str] = OrderedDict()  # matches, or why refused

    def match(self, pattern: str) -> tuple[str, ...]:
        """The addresses `pattern` matches, in the order given. Raises PatternRefused."""
        hit = self._cache.get(pattern)
        if hit is not None:
            self._cache.move_to_end(pattern)
        else:
            try:
                p = Pattern(pattern)
                hit = tuple(a for a in self.addresses if p.matches(a))
            except PatternRefused as e:
                hit = str(e)  # refused again at no cost when a flood repeats it
            self._cache[pattern] = hit
        if len(self._cache) > CACHE:
            self._cache.popitem(last=False)
        if isinstance(hit, str):
            raise PatternRefused(hit)
        return hit


def is_pattern(address: str) -> bool:
    return not PATTERN_CHARS.isdisjoint(address)
