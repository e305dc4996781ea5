"""Live control: OSC (wire, server, control, feedback out), OSCQuery, presets, replay, access, MIDI, the
address map; surfaces.py attaches them all to a show. May read the show file and public helpers of show/,
never its loop."""
