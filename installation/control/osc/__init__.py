"""OSC: the wire (`wire`), the receiver's intake, the UDP server handed that intake, feedback out, the
control composing them (`control.OscControl`), address patterns, record and replay and the run flags.
It knows nothing of the web or MIDI (pyproject.toml's contracts); docs/osc.md says what a controller sees."""
