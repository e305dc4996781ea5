"""A show being played: the show file (config, its errors, the [midi] section), the loop and what it owns
(workers, input, governor), the handle control surfaces get, keys, schedule, health. Imports no control
surface: app.py attaches them."""
