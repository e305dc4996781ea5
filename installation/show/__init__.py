"""A show being played: the show file (config, its errors, the [midi] section), the loop and its parts
(pipeline, model slot, surface), keys, schedule, health. Imports no control surface: app.py attaches them."""
