"""OSC: the wire (`wire`), the receiver's intake, the UDP server handed that intake, feedback out, the
control composing them (`control.OscControl`), address patterns, record and replay, the address map and
the run flags. docs/osc.md says what a controller sees."""
