"""What `installation check` says about the rest of the rig: NDI sources seen, virtual cameras, MIDI ports.

A show's own NDI source must be among the senders seen, or check fails with the file and the key: at run
time the same source is only waited for (it may start after the show), never fatal.
"""

from __future__ import annotations

from typing import Any

from installation.core.errors import UserError


def check_lines(cfg: Any) -> list[str]:
    """Lines for `check`; raises UserError when the show's NDI source is nowhere to be seen."""
    from installation.control.midi.control import check_lines as midi_lines
    from installation.media.ndi import list_sources, match_source
    from installation.media.outputs import list_virtual_cameras

    lines = []
    try:
        seen = list_sources(2.0 if cfg.source.kind == "ndi" else 1.0)  # check stays quick for other shows
        lines.append(f"ndi sources: {', '.join(f'{n} ({a})' for n, a in seen) if seen else 'none seen'}")
    except OSError as e:
        seen, error = [], str(e)
        lines.append(f"ndi sources: none (NDI can't run here: {error})")
    if cfg.source.kind == "ndi" and match_source(cfg.source.name, [n for n, _ in seen]) is None:
        raise UserError(f"no NDI source matching {cfg.source.name!r} is on the network", file=cfg.path,
                        key="source.name", expected="the name of a running NDI sender (seen: "
                        + (", ".join(n for n, _ in seen) or "none") + ")")
    cams, why = list_virtual_cameras()
    lines.append(f"virtual cameras: {', '.join(cams) if cams else 'none (' + why + ')'}")
    for i, o in enumerate(getattr(cfg, "output", [])):
        if o.kind == "virtual_camera" and not cams:
            lines.append(f"output {o.id} (output[{i}]): off until a v4l2loopback device exists ({why})")
    lines.extend(midi_lines())
    return lines
