"""Every control surface of a show, attached once its store holds the show file's values: the last live
values restored, live state, presets, OSC in and out, OSC record and replay, the web (panel, status page,
OSCQuery), MIDI. Called by the
composition root (app.Show.attach_surfaces)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from installation.control.access import describe_allow
from installation.control.net import reachable_host
from installation.control.osc.control import OscControl
from installation.control.osc.replay import OscRecorder
from installation.control.osc.wire import OscSettings
from installation.control.presets import PresetBank
from installation.core.errors import UserError
from installation.core.state import LiveState, add_log_file, state_dir
from installation.show.handle import ShowHandle
from installation.show.keys import help_line

log = logging.getLogger("installation.osc")


def attach_surfaces(show: ShowHandle) -> None:
    """Called by Show.build() once the store holds the show file's values and the source is open: restores
    the last live values, then adds live state, presets, OSC, the web and MIDI as the show's surfaces."""
    cfg, opts = show.cfg, show.opts
    settings = OscSettings.resolve(cfg, opts)
    folder = state_dir(cfg.name, opts.state)
    replay_file = opts.control.osc_replay
    handler = add_log_file(folder / "logs") if folder is not None else None
    keeper: LiveState | None = None
    if folder is not None:
        keeper = LiveState(folder, show.store, cfg.name)
        if cfg.state.restore and replay_file is None:
            keeper.restore(fresh=opts.control.fresh)
            for name, v in opts.extra_params.items():  # --set still wins over what was left last time
                show.store.set(name, v, source="config", ramp_s=0.0)
    presets = PresetBank(folder / "presets" if folder is not None else None, show.store, cfg.name,
                         declared={int(k): v for k, v in cfg.presets.items()})
    recorder = None
    record = opts.control.osc_record
    if record is True:
        if folder is None:
            raise UserError("--osc-record without a FILE needs a state folder", expected="--osc-record FILE")
        record = folder / "recordings" / f"osc-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    if record:
        recorder = OscRecorder(Path(record))
        log.info("recording OSC to %s", record)
    control = OscControl(show, settings, presets, recorder, replay_file)
    control.log_handler = handler
    if keeper is not None:
        show.add(keeper)
    show.add(presets, presets.hud)
    show.add(control, control.hud)
    show.add_hud(help_line)
    web_port = cfg.web.port if opts.control.web_port is None else opts.control.web_port
    if settings.enabled and (web_port or settings.oscquery_port):
        # the panel, the status page and OSCQuery: one server, the same intake, gate and store as OSC
        from installation.control.web.server import WebSettings
        from installation.control.web.surface import WebControl

        web = WebControl(show, control, presets, WebSettings(
            host=settings.host, port=web_port, oscquery_port=settings.oscquery_port, token=cfg.web.token,
            thumbnail=cfg.web.thumbnail, name=cfg.name, origins=list(cfg.web.origins)))
        show.add(web, web.hud)
        if web.server.ports.get("web"):
            log.info("panel on http://%s:%d/ (status page: /status)", reachable_host(settings.host),
                     web.server.ports["web"])
    from installation.control.midi.control import attach_midi

    attach_midi(show, folder)  # [midi]: the same path into the store, learned bindings in the state folder
    show.publish()
    if control.server is not None and control.server.listening:
        feedback = ", ".join(f"{h}:{p}" for h, p in settings.feedback)
        log.info("OSC in on %s:%d%s; who may send: %s; writes over OSC %s", settings.host, control.port,
                 f", feedback to {feedback}" if feedback else "", describe_allow(settings.allow),
                 "allowed" if settings.writes else "refused")
