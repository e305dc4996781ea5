"""A show being played: the show file (config and its errors), the loop, keys, schedule, health."""
