"""A show being played: the show file (config, its errors; sections another wing owns are checked by the
checkers app.load_show hands in), how it is run (options: RunOptions and the ControlOptions it carries), the
loop and what it owns (workers, input, governor), the handle control surfaces get, keys, schedule, health.
Imports no control surface: app.py attaches them."""
