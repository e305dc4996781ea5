"""Kiosk keys: in a fullscreen `installation run` a visitor may reach the keyboard, so the show's keys
act only with the modifier the technician chose (`[keys] modifier`, "ctrl+alt" by default). `rehearse`
and `--window` keep plain keys; "none" keeps them on a rehearsal machine too. Quitting always needs Ctrl
(or the modifier): a bare Q or Escape never ends the show.

pyglet's modifier bits and key symbols are written out here rather than imported: importing
pyglet.window connects to a display, which a headless show (and `check`) doesn't have.
"""

from __future__ import annotations

from typing import Any

from installation.core.errors import UserError

# pyglet.window.key.MOD_*
MODIFIERS = {"shift": 1 << 0, "ctrl": 1 << 1, "alt": 1 << 2, "super": 1 << 5}
MOD_CTRL = MODIFIERS["ctrl"]
KEY_Q = 0x071

# The key map, as the README and the HUD help say it.
KEY_MAP = "H hud  B black  Space freeze  M monitor  F full  G grab  </> presets  Ctrl+Q quit"


def parse_modifier(text: str) -> int:
    """'ctrl+alt' as pyglet's modifier bits; 'none' is 0. Raises ValueError (the show file's validator
    turns it into the file, key and what was expected)."""
    words = [w.strip().lower() for w in text.split("+")]
    if words == ["none"]:
        return 0
    unknown = [w for w in words if w not in MODIFIERS]
    if unknown or not words:
        raise ValueError(f"{text!r} is not a modifier: use {', '.join(MODIFIERS)} joined by '+', or \"none\"")
    mask = 0
    for w in words:
        mask |= MODIFIERS[w]
    return mask


def required(show: Any) -> int:
    """The modifier bits a key needs in this show now: 0 unless it is a fullscreen `run`."""
    if not getattr(show.opts, "venue", False):
        return 0
    fullscreen = show.cfg.render.fullscreen if show.opts.fullscreen is None else show.opts.fullscreen
    if not fullscreen:
        return 0
    try:
        return parse_modifier(show.cfg.keys.modifier)
    except ValueError as e:  # validated with the show file; only a show built in code gets here
        raise UserError(str(e), key="keys.modifier") from None


def key_acts(show: Any, symbol: int, modifiers: int) -> bool:
    """Whether a key press may do anything. Ctrl+Q is let through so quitting works as it always did."""
    need = required(show)
    if symbol == KEY_Q and modifiers & MOD_CTRL:
        return True
    return modifiers & need == need


def wants_quit(show: Any, symbol: int, modifiers: int) -> bool:
    """Ctrl+Q, or the modifier + Q where the modifier has no Ctrl in it."""
    need = required(show)
    return symbol == KEY_Q and bool(modifiers & MOD_CTRL or (need and modifiers & need == need))


def help_line(show: Any) -> list[str]:
    """The HUD's key help: which modifier the keys need here."""
    return [(f"keys with {show.cfg.keys.modifier}: " if required(show) else "keys: ") + KEY_MAP]
