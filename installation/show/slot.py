"""The model slot of a show: load (sized to the source's rate), fail (dropped, the camera picture shows,
health.ModelRetry loads it again), swap (loaded in the background, crossfaded in the shader, then
adopted). A mixin of show.loop.Show: the state is the Show's."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from installation.core.errors import UserError
from installation.core.paths import data_dir
from installation.inference.models import (
    Model,
    find_model,
    load_for_rate,
)
from installation.vision.preprocess import ChainState

if TYPE_CHECKING:
    from installation.show.loop import Show

log = logging.getLogger("installation.show")

MODELS_DIR = data_dir("models")


class ModelSlot:
    """Load, fail, retry, swap, crossfade (show.loop.Show's)."""

    def open_model(self, path: str | Path) -> Model:
        """Load a model for this show: its providers, and as many frames in flight as the source's rate
        needs (models.load_for_rate); one for chained models and with --lockstep."""
        setting = 1 if (self.opts.lockstep or self.cfg.model.then) else self.cfg.model.workers
        return load_for_rate(path, self.cfg.model.providers, setting, self.source_rate(), backend=self.backend)

    def source_rate(self) -> float | None:
        """Frames a second the source delivers; None when it is read as fast as the loop can."""
        src = self.source
        if src is None or not getattr(src, "realtime", True):
            return None
        return float(getattr(src, "fps", 0.0)) or None

    @property
    def workers_in_use(self) -> int:
        return min(self.workers, self.model.parallel) if self.model is not None else 1

    def load_initial_model(self) -> None:
        """A missing or broken model is not fatal here: the camera picture shows, the HUD says why."""
        path = self.cfg.model.path
        if path is None:
            return
        try:
            self.model = self.open_model(path)
            self.chain = self.model.card.chain
            self.stages = [self.open_model(p) for p in self.cfg.model.then]
        except Exception as e:  # retried by health.ModelRetry while the camera picture shows
            self.model_error = e.render() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            self.stats.fault("model", self.model_error)

    def drop_failing_model(self, model: Model, e: Exception) -> bool:
        """After a few failures in a row, stop using a model: the camera picture shows through the
        composite and health.ModelRetry loads it again later. True when it was dropped."""
        self._model_failures += 1
        if self._model_failures < self.cfg.health.model_fail_after or self.model is not model:
            return False
        self._model_failures = 0
        self.model, self.model_wanted = None, model.path
        self.model_error = f"model {model.name} failed ({type(e).__name__}: {e}); showing the camera, retrying"
        log.error("%s", self.model_error)
        return True

    def adopt_model(self, model: Model) -> None:
        """Take a model at once (a retried load): nothing to fade from. The show file's values for the
        model's preprocessing still win over the card's, as at build()."""
        self._incoming_state = ChainState()
        self.incoming = model
        self._finish_swap()
        mine = {**self.cfg.params, **self.opts.extra_params}
        for name in model.card.chain.param_values():
            if name in mine:
                self.store.set(name, mine[name], source="config", ramp_s=0.0)
        self.model_wanted = None

    def update_model_swap(self) -> None:
        wanted = self.store.target("model/select")
        if wanted and wanted != self._swap_name and self._swap_thread is None:
            self._swap_name = wanted
            self._swap_thread = threading.Thread(target=self._load_incoming, args=(wanted,), name="model-load",
                                                 daemon=True)
            self._swap_thread.start()
        if self._swap_thread is not None and not self._swap_thread.is_alive():
            self._swap_thread = None
        if self.incoming is not None and self.crossfade() >= 1.0:
            self._finish_swap()

    def model_dirs(self) -> list[Path]:
        """Where a model's bare name is looked up, first match wins: the show's models folder (the one
        holding its configured model, else models/ beside the show file), then the installed models."""
        dirs = []
        if self.cfg.model.path is not None:
            dirs.append(Path(self.cfg.model.path).parent)
        if self.cfg.path is not None:
            dirs.append(Path(self.cfg.path).parent / "models")
        dirs.append(MODELS_DIR)
        return list(dict.fromkeys(d.resolve() for d in dirs))

    def _load_incoming(self, name: str) -> None:
        base = Path(self.cfg.path).parent if self.cfg.path is not None else Path.cwd()
        try:
            model = self.open_model(find_model(name, base, self.model_dirs()))
        except Exception as e:  # a failed swap keeps the model that was running
            msg = e.render() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            self.stats.fault("model", f"swap to {name!r} failed: {msg}")

            def failed(show: Show) -> None:
                show.model_error = f"swap to {name!r} failed: {msg}"
                show._swap_name = ""
                if show.store.target("model/select") == name:
                    # cleared, so selecting the same name again is a change and retries the load
                    show.store.set("model/select", "", source="model")

            self.inbox.put(failed)
            return

        def start(show: Show) -> None:
            show._incoming_state = ChainState()  # before incoming: a worker that sees one sees both
            show.incoming = model
            if show.model is None:  # nothing to fade from: take it at once
                show._finish_swap()
                return
            show._swap_t0 = time.monotonic()
        self.inbox.put(start)

    def crossfade(self) -> float:
        if self.incoming is None:
            return 0.0
        dur = float(self.store.get("model/crossfade"))
        return 1.0 if dur <= 0 else min(1.0, (time.monotonic() - self._swap_t0) / dur)

    def _finish_swap(self) -> None:
        model, self.incoming = self.incoming, None
        assert model is not None
        self._chain_state = self._incoming_state  # the temporal memory that went with the model faded in
        self.model, self.chain, self.stages, self.model_error = model, model.card.chain, [], ""
        for name, v in model.card.chain.param_values().items():
            self.store.set(name, v, source="model")
        self.stats.count("model_swaps")
        log.info("now playing model %s", model.name)
