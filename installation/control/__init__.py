"""Live control: OSC (osc/), the web and OSCQuery (web/), MIDI (midi/), presets, the network and access
facts they share (net, access), the address map, the run flags read into ControlOptions and what `check`
says of the exposure (options); surfaces.py attaches them all to a show. May read the show file and public
helpers of show/, never its loop."""
