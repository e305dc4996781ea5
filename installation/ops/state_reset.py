"""`installation state reset`: forget a show's saved live values (its presets, recordings, grabs and
logs stay). The state folder itself is core.state's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from installation.app import load_show
from installation.core.errors import UserError
from installation.core.state import ENV, LIVE_FILE, said_value, saved_live_values, state_dir
from installation.show.config import find_show

# ---- `installation state reset` -----------------------------------------------------------------

def cmd_state_reset(args: Any) -> int:
    """Remove a show's saved live values (its presets, recordings, grabs and logs stay)."""

    try:
        name = load_show(args.show).name
    except UserError:  # a show file being mended still has a state folder to clear
        name = find_show(args.show).stem
    folder = state_dir(name, args.state)
    if folder is None:
        raise UserError(f"no state folder: ${ENV} is set but empty (state is switched off)", key=ENV)
    path = folder / LIVE_FILE
    values = saved_live_values(folder)
    if not path.exists():
        print(f"{name}: no saved live values in {folder}; nothing removed")
        return 0
    path.unlink()
    listed = ", ".join(f"{k} = {said_value(v)}" for k, v in sorted(values.items()))
    print(f"{name}: removed {path} ({len(values)} saved live value(s){': ' + listed if listed else ''})")
    presets = sorted((folder / "presets").glob("*.json")) if (folder / "presets").is_dir() else []
    print(f"kept: {len(presets)} preset(s) in {folder / 'presets'}; the next start uses the show file's values")
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("state", help="a show's state folder: saved live values")
    what = p.add_subparsers(dest="state_command", metavar="ACTION", required=True)
    r = what.add_parser("reset", help="forget the saved live values (presets are kept)")
    r.add_argument("show", nargs="?", default=None)
    r.add_argument("--state", type=Path, metavar="DIR", help="the show's state folder (default: the show's own)")
    r.set_defaults(func=cmd_state_reset)
