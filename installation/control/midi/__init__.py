"""MIDI in: the `[midi]` section and its bindings (`bindings`, checked when the show loads), the input as a
control surface (`control`) and its ports (`ports`)."""
