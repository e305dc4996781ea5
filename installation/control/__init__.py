"""Live control: OSC in and feedback, OSCQuery, presets, replay, access, MIDI."""
