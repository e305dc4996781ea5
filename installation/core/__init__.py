"""The bottom wing: frames and slots, the parameter registry and store, errors, the state folder (atomic
writes, rotating logs), timing and stats, TOML output. Imports nothing of the package."""
