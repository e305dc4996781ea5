"""The show's own parameters, and the registry of every parameter the runtime declares, gathered from
the PARAMS list of each module that owns some, named here one by one (no importlib): the order is the
order the address space is listed in (OSC map, OSCQuery)."""

from __future__ import annotations

from collections.abc import Iterable

from installation.control import midi, presets
from installation.core.params import Param, Registry
from installation.render import renderer
from installation.vision import preprocess, segment

PARAMS: list[Param] = [
    Param("show/blackout", "bool", False, description="black screen, the show keeps running", persist=False),
    Param("show/freeze", "bool", False, description="hold the current picture", persist=False),
    Param("model/select", "str", "", description="load this model (a name in models/ or a path), crossfade to it",
          persist=False),
    Param("model/crossfade", "float", 2.0, 0, 30, unit="s", description="how long a model swap crossfades"),
    Param("model/skip_still", "float", 0.5, 0, 20, unit="grey levels",
          description="reuse the last output while the model's input changes less than this (0: always infer)"),
    Param("show/grab", "trigger", description="save camera, mask, model input and output as PNGs (state folder)",
          persist=False),
]


def default_registry(extra: Iterable[Param] = ()) -> Registry:
    """Every parameter the runtime declares, gathered from the modules that own them."""
    params: list[Param] = []
    for declared in (preprocess.PARAMS, segment.PARAMS, renderer.PARAMS, PARAMS, presets.PARAMS, midi.PARAMS):
        params.extend(declared)
    params.extend(extra)
    return Registry(params)
