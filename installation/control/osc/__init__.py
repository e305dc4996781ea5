"""OSC: the wire (`wire`), the receiver's intake, the UDP server handed that intake, feedback out, the
control composing them (`control.OscControl`), address patterns, record and replay (the run flags are
control/options.py's: they speak for the web too).
It knows nothing of the web or MIDI (pyproject.toml's contracts); docs/osc.md says what a controller sees."""
