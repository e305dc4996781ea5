"""The per-show state folder: what a running show writes (presets, live values, OSC recordings, logs, grabs).

Never inside the installed show files: those may be read-only, shared between machines or replaced by an
update. Where it is, first match wins:

  --state DIR                      this show's folder, exactly
  $INSTALLATION_STATE_DIR/<show>   a base folder for every show (a service's StateDirectory=);
                                   set but empty: keep no state at all (the test suite does this)
  $XDG_STATE_HOME/installation/<show>, else ~/.local/state/installation/<show>

Every write is atomic (temporary file, fsync, rename), so a power cut leaves the old file or the new one,
never half of one. A file that can't be read back is set aside (renamed *.corrupt-TIME) and ignored.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from installation.core.files import atomic_write, rotating_log_handler
from installation.core.params import Param, ParamError, ParamStore

log = logging.getLogger("installation.state")

ENV = "INSTALLATION_STATE_DIR"
LIVE_FILE = "live.json"
LOG_FILE = "installation.log"


def safe_name(name: str) -> str:
    """A show name as one harmless path component."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "show"


def state_dir(show_name: str, override: str | Path | None = None) -> Path | None:
    """This show's state folder (not created here), or None when state is switched off."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV)
    if env is not None:
        return Path(env).expanduser() / safe_name(show_name) if env.strip() else None
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "installation" / safe_name(show_name)


def set_aside(path: Path, why: str) -> Path | None:
    """Rename a bad file out of the way (kept for a person to look at) and say so."""
    dest = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while dest.exists():
        dest = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    try:
        path.rename(dest)
    except OSError as e:
        log.warning("%s is unreadable (%s) and can't be set aside: %s", path, why, e)
        return None
    log.warning("%s is unreadable (%s); set aside as %s and ignored", path, why, dest.name)
    return dest


def read_json(path: Path, expect: type = dict) -> Any | None:
    """A JSON file's content; None when missing, or when corrupt (then it is set aside, never fatal)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("can't read %s: %s", path, e)
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        set_aside(path, f"not JSON: {e}")
        return None
    if not isinstance(data, expect):
        set_aside(path, f"expected a JSON {expect.__name__}, got {type(data).__name__}")
        return None
    return data


def apply_values(store: ParamStore, values: Any, source: str, keep: Any = None,
                 ramp_s: float | None = 0.0, what: str = "values") -> int:
    """Set saved values that still make sense: unknown names and bad values are skipped with a warning
    (a show may have lost a parameter since they were saved). `keep(param)` filters. Returns how many."""
    if not isinstance(values, Mapping):
        log.warning("%s: expected a table of values, got %s", what, type(values).__name__)
        return 0
    n = 0
    skipped: list[str] = []
    for name, value in values.items():
        if not isinstance(name, str) or name not in store.registry:
            skipped.append(str(name))
            continue
        p = store.registry[name]
        if p.kind == "trigger" or (keep is not None and not keep(p)):
            continue
        try:
            store.set(p.name, value, source=source, ramp_s=ramp_s if p.kind == "float" else 0.0)
        except ParamError as e:
            skipped.append(f"{name} ({e})")
            continue
        n += 1
    if skipped:
        log.warning("%s: skipped %d value(s): %s", what, len(skipped), ", ".join(skipped[:8]))
    return n


class _LatestWinsWriter:
    """One background thread that writes files, so fsync on a slow SD card never stalls a frame.

    Only the newest content per path is kept: a write that is overtaken is never written."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._pending: dict[Path, str] = {}
        self._closed = False
        self.writes = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, path: Path, text: str) -> None:
        with self._cond:
            self._pending[path] = text
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending and self._closed:
                    return
                path, text = self._pending.popitem()
            try:
                atomic_write(path, text)
                self.writes += 1
            except OSError as e:
                self.errors += 1
                log.warning("can't write %s: %s", path, e)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)


class LiveState:
    """The last live values (parameters with persist=True), saved a moment after they change and
    restored at the next start, so a power cut or a restart loses no tuning.

    A control: update(show) on the main thread decides when to save; the writing happens on a thread.
    Saves wait until changes pause for `debounce_s`, but never longer than `max_delay_s` while a fader
    keeps moving. Changes made by the show file, by restoring and by a replay are not live tuning and
    don't cause a save. Only values tuned live (or restored, i.e. tuned at an earlier start) are saved, so
    editing the show file's [params] still changes every value nobody touched live.
    """

    QUIET_SOURCES = frozenset({"config", "restore", "replay"})

    def __init__(self, folder: Path, store: ParamStore, show_name: str = "",
                 debounce_s: float = 1.0, max_delay_s: float = 5.0) -> None:
        self.folder = folder
        self.path = folder / LIVE_FILE
        self.store = store
        self.show_name = show_name
        self.debounce_s = debounce_s
        self.max_delay_s = max_delay_s
        self._lock = threading.Lock()
        self._first_change: float | None = None
        self._last_change = 0.0
        self._writer = _LatestWinsWriter("state-writer")
        self.saves = 0
        self.restored = 0
        self.tuned: set[str] = set()  # the names this file keeps
        store.subscribe(self._on_change)

    @staticmethod
    def persists(p: Param) -> bool:
        return p.persist and p.kind != "trigger"

    def restore(self, fresh: bool = False) -> int:
        """Apply the saved values; a missing file is a first start, a corrupt one is set aside. Each value
        that differs from what the show file gave is named in the log: a restored value silently winning
        over an edited show file looks like the edit did nothing. fresh: apply none (say so)."""
        if fresh:
            saved = saved_live_values(self.folder)
            if saved:
                log.info("starting fresh: %d saved live value(s) in %s ignored for this run", len(saved), self.path)
            return 0
        data = read_json(self.path)
        if data is None:
            return 0
        before = self.store.targets()
        values = data.get("values", {})
        self.restored = apply_values(self.store, values, "restore", keep=self.persists, what=str(self.path))
        after = self.store.targets()
        if isinstance(values, Mapping):
            self.tuned.update(n for n in values if isinstance(n, str) and n in after)
        changed = [f"{n} = {said_value(after[n])} (show file: {said_value(before[n])})" for n in sorted(self.tuned)
                   if n in before and after[n] != before[n]]
        log.info("restored %d live value(s) from %s%s", self.restored, self.path,
                 (": " + ", ".join(changed) + "; --fresh ignores them, `installation state reset` removes them")
                 if changed else " (all as the show file says)")
        return self.restored

    def _on_change(self, p: Param, value: Any, source: str) -> None:
        if source in self.QUIET_SOURCES or not self.persists(p):
            return
        now = time.monotonic()
        with self._lock:
            self.tuned.add(p.name)
            if self._first_change is None:
                self._first_change = now
            self._last_change = now

    def values(self) -> dict[str, Any]:
        reg = self.store.registry
        with self._lock:
            tuned = set(self.tuned)
        return {n: v for n, v in self.store.targets().items() if n in tuned and self.persists(reg[n])}

    def _text(self) -> str:
        return json.dumps({"version": 1, "show": self.show_name, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           "values": self.values()}, indent=1, sort_keys=True) + "\n"

    def update(self, show: Any = None) -> None:
        now = time.monotonic()
        with self._lock:
            first = self._first_change
            if first is None:
                return
            if now - self._last_change < self.debounce_s and now - first < self.max_delay_s:
                return
            self._first_change = None
        self._writer.put(self.path, self._text())
        self.saves += 1

    def flush(self) -> None:
        """Save now if anything changed (at close: a clean stop loses nothing)."""
        with self._lock:
            dirty = self._first_change is not None
            self._first_change = None
        if dirty:
            self._writer.put(self.path, self._text())
            self.saves += 1

    def close(self) -> None:
        self.flush()
        self._writer.close()


def said_value(v: Any) -> str:
    """A live value as the start, `check` and `state reset` name it."""
    return f"{v:.4g}" if isinstance(v, float) else repr(v) if isinstance(v, str) else str(v)


def saved_live_values(folder: Path) -> dict[str, Any]:
    """The values a start would restore from this state folder, read only (a corrupt file is left alone
    here: the show sets it aside when it starts)."""
    try:
        data = json.loads((folder / LIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    values = data.get("values") if isinstance(data, dict) else None
    return dict(values) if isinstance(values, dict) else {}


def add_log_file(folder: Path) -> logging.Handler | None:
    """Keep the show's log in its state folder too (rotated: a show that runs for months can't fill a disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = rotating_log_handler(folder / LOG_FILE, max_bytes=1_000_000, backups=3)
    except OSError as e:
        log.warning("no log file in %s: %s", folder, e)
        return None
    logging.getLogger("installation").addHandler(handler)  # the level stays the CLI's (-v) choice
    return handler


def remove_log_file(handler: logging.Handler | None) -> None:
    if handler is not None:
        logging.getLogger("installation").removeHandler(handler)
        handler.close()
