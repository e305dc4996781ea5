"""The model slot: which model plays, and every way that changes, as one state machine.

    empty ──load──▶ playing ──/model/select──▶ loading ──loaded──▶ fading ──crossfade done──▶ playing
      │                │                          └──failed: the old one plays on, the error shown, select cleared
      │                └──fails `fail_after` frames in a row──▶ dropped
      └──(missing or broken at start)──────────────────────────▶ dropped ──retry, back-off──▶ playing

Loads run on threads of their own; what they bring back is posted to the slot and taken in `update()`
on the main thread, so the state changes in one place. Inference workers read `model`, `chain`,
`stages`, `incoming` and the chain states once a frame (a swap may start or end while a frame is in
flight); `drop_failing` and `succeeded` are theirs to call. Where no model plays, the show draws the
camera picture.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from installation.core.errors import UserError
from installation.core.params import ParamStore
from installation.core.paths import data_dir
from installation.core.timing import Stats
from installation.inference.models import Model, find_named_model, is_model_name
from installation.vision.preprocess import Chain, ChainState

log = logging.getLogger("installation.show")

MODELS_DIR = data_dir("models")


def _say(e: Exception) -> str:
    return e.render() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"


class ModelSlot:
    """Load -> run -> fail -> retry, and swap -> crossfade, for one show (see the module's diagram)."""

    def __init__(self, open_model: Callable[[Path], Model], store: ParamStore, stats: Stats, *,
                 config_values: dict[str, Any] | None = None, fail_after: int = 3, retry_s: float = 10.0,
                 retry_max_s: float = 300.0, dirs: list[Path] | None = None) -> None:
        self.open_model = open_model  # path -> a loaded model, sized to the show's source and backend
        self.store, self.stats = store, stats
        self.config_values = config_values or {}  # the show file's values for preprocessing win over a card's
        self.fail_after = fail_after
        self.retry_s, self.retry_max_s = retry_s, retry_max_s
        self.dirs = dirs or [MODELS_DIR]  # where a name given to /model/select is looked up, in order
        self.model: Model | None = None
        self.chain: Chain | None = None  # the playing model's preprocessing
        self.stages: list[Model] = []  # chained models after the first, each fed the one before
        self.incoming: Model | None = None  # a model being crossfaded in
        self.chain_state = ChainState()  # the workers' temporal memory for the playing model
        self.incoming_state = ChainState()  # the incoming model's, during a crossfade
        self.error = ""  # why no model, or the last swap's failure: the HUD's line
        self.wanted: Path | None = None  # what a retry loads: the show's model, or one dropped after failing
        self.failures = 0  # run-time failures in a row (workers count them)
        self._posted: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._selected = ""  # the last name /model/select asked for (the same name again is no change)
        self._loading = ""  # the name a swap is loading
        self._loader: threading.Thread | None = None
        self._t_fade = 0.0
        self._retry_delay = retry_s
        self._t_retry: float | None = None
        self._closed = False

    @property
    def state(self) -> str:
        if self.incoming is not None:
            return "fading"
        if self._loading:
            return "loading"
        if self.model is not None:
            return "playing"
        return "dropped" if self.wanted is not None else "empty"

    @property
    def loading_name(self) -> str:
        """The model a swap is loading or fading in ('' when none)."""
        return self.incoming.name if self.incoming is not None else self._loading

    # ---- loading ----------------------------------------------------------------------------------
    def load(self, path: Path | None, then: list[Path] | None = None) -> None:
        """The show's model at start. Missing or broken is not fatal: the error is shown, and retried."""
        self.wanted = path
        if path is None:
            return
        try:
            self.model = self.open_model(path)
            self.chain = self.model.card.chain
            self.stages = [self.open_model(p) for p in then or []]
        except Exception as e:
            self.model, self.error = None, _say(e)
            self.stats.fault("model", self.error)

    def take(self, model: Model) -> None:
        """Play a model loaded elsewhere (a bench's shared session), at once."""
        self.model, self.chain, self.stages, self.wanted = model, model.card.chain, [], model.path

    # ---- the workers' side ------------------------------------------------------------------------
    def drop_failing(self, model: Model, e: Exception) -> bool:
        """After `fail_after` failures in a row, stop using a model: the camera shows, and it is loaded
        again on the retry schedule. True when it was dropped."""
        self.failures += 1
        if self.failures < self.fail_after or self.model is not model:
            return False
        self.failures = 0
        self.model, self.wanted = None, model.path
        self.error = f"model {model.name} failed ({type(e).__name__}: {e}); showing the camera, retrying"
        log.error("%s", self.error)
        return True

    def succeeded(self) -> None:
        self.failures = 0

    # ---- the main thread's side ---------------------------------------------------------------------
    def update(self, now: float | None = None) -> None:
        """Once a frame: take what loaders brought, start a swap /model/select asks for, end a finished
        crossfade, retry a dropped model when its time comes."""
        now = time.monotonic() if now is None else now
        while True:
            try:
                self._posted.get_nowait()()
            except queue.Empty:
                break
        wanted = self.store.target("model/select")
        if wanted and wanted != self._selected and self._loader is None:
            self._selected = self._loading = wanted
            self._start(self._load_swap, wanted)
        if self._loader is not None and not self._loader.is_alive() and self._posted.empty():
            self._loader = None
        if self.incoming is not None and self.crossfade(now) >= 1.0:
            self._finish_swap()
        self._update_retry(now)

    def crossfade(self, now: float | None = None) -> float:
        """How far the incoming model is faded in: 0 with none, 1 when done."""
        if self.incoming is None:
            return 0.0
        dur = float(self.store.get("model/crossfade"))
        now = time.monotonic() if now is None else now
        return 1.0 if dur <= 0 else min(1.0, (now - self._t_fade) / dur)

    def model_dirs(self) -> list[Path]:
        """Where a bare model name is looked up, first match wins."""
        return list(dict.fromkeys(d.resolve() for d in self.dirs))

    def close(self) -> None:
        self._closed = True

    def _start(self, target: Callable[[Any], None], arg: Any) -> None:
        self._loader = threading.Thread(target=target, args=(arg,), name="model-load", daemon=True)
        self._loader.start()

    def _post(self, job: Callable[[], None]) -> None:
        if not self._closed:
            self._posted.put(job)

    def _load_swap(self, name: str) -> None:
        """A model by name, from a controller, a preset or a schedule: only a name among the show's model
        folders. What the network sees (the HUD, /api/status, faults) says neither where the machine keeps its
        files nor whether some other path exists; the full reason goes to the local log."""
        if not is_model_name(name):
            self.stats.count("model_select_refused")
            log.warning("/model/select %r refused: a model is selected by its name, never by a path", name[:200])
            self._post(lambda: self._swap_failed(name, "a model is selected by its name in the show's model "
                                                       "folders, never by a path", shown="a path"))
            return
        try:
            path = find_named_model(name, self.model_dirs())
        except UserError as e:
            log.warning("/model/select: %s", e.render())
            missing = "no such model in the show's model folders"
            self.stats.fault("model", f"swap to {name!r} failed: {missing}")
            self._post(lambda: self._swap_failed(name, missing))
            return
        try:
            model = self.open_model(path)
        except Exception as e:  # a failed swap keeps the model that was running
            log.error("swap to %r failed: %s", name, _say(e))
            msg = "it could not be loaded (the show's log says why)"
            self.stats.fault("model", f"swap to {name!r} failed: {msg}")
            self._post(lambda: self._swap_failed(name, msg))
            return
        self._post(lambda: self._begin_fade(model))

    def _swap_failed(self, name: str, msg: str, shown: str = "") -> None:
        """`shown`: what the HUD and /api/status name instead of `name` (a path is not repeated to viewers)."""
        self.error = f"swap to {shown or repr(name)} failed: {msg}"
        self._loading, self._selected = "", ""
        if self.store.target("model/select") == name:
            # cleared, so selecting the same name again is a change and retries the load
            self.store.set("model/select", "", source="model")

    def _begin_fade(self, model: Model) -> None:
        self.incoming_state = ChainState()  # before incoming: a worker that sees one sees both
        self.incoming, self._loading = model, ""
        if self.model is None:  # nothing to fade from: take it at once
            self._finish_swap()
            return
        self._t_fade = time.monotonic()

    def _finish_swap(self) -> None:
        model, self.incoming = self.incoming, None
        assert model is not None
        self.chain_state = self.incoming_state  # the temporal memory that went with the model faded in
        self.model, self.chain, self.stages, self.error = model, model.card.chain, [], ""
        for name, v in model.card.chain.param_values().items():
            self.store.set(name, v, source="model")
        self.stats.count("model_swaps")
        log.info("now playing model %s", model.name)

    # ---- retry ------------------------------------------------------------------------------------
    def _update_retry(self, now: float) -> None:
        """A missing, broken or dropped model is loaded again after `retry_s`, doubling up to
        `retry_max_s`, while the camera shows."""
        if self.model is not None or self.wanted is None or self.incoming is not None:
            self._retry_delay, self._t_retry = self.retry_s, None
            return
        if self._loader is not None:
            return
        if self._t_retry is None:
            self._t_retry = now + self._retry_delay
        if now < self._t_retry:
            return
        self._retry_delay = min(self._retry_delay * 2, self.retry_max_s)
        self._t_retry = now + self._retry_delay
        self.stats.count("model_retries")
        self._start(self._load_retry, self.wanted)

    def _load_retry(self, path: Path) -> None:
        try:
            model = self.open_model(path)
        except Exception as e:
            self.stats.fault("model", f"retry: {_say(e)}")
            return
        self._post(lambda: self._adopt(model))

    def _adopt(self, model: Model) -> None:
        """A retried model plays at once: nothing to fade from. The show file's values for its
        preprocessing still win over the card's, as at start."""
        self.incoming_state = ChainState()
        self.incoming = model
        self._finish_swap()
        for name in model.card.chain.param_values():
            if name in self.config_values:
                self.store.set(name, self.config_values[name], source="config", ramp_s=0.0)
