"""The show's own parameters (blackout, freeze, model select and crossfade, still-room skip, grab);
app.default_registry() gathers them with every other wing's."""

from __future__ import annotations

from installation.core.params import Param

PARAMS: list[Param] = [
    Param("show/blackout", "bool", False, description="black screen, the show keeps running", persist=False),
    Param("show/freeze", "bool", False, description="hold the current picture", persist=False),
    Param("model/select", "str", "", description="load the model of this name (in the show's model folders), crossfade",
          persist=False),
    Param("model/crossfade", "float", 2.0, 0, 30, unit="s", description="how long a model swap crossfades"),
    Param("model/skip_still", "float", 0.5, 0, 20, unit="grey levels",
          description="reuse the last output while the model's input changes less than this (0: always infer)"),
    Param("show/grab", "trigger", description="save camera, mask, model input and output as PNGs (state folder)",
          persist=False),
]
