"""Displays (window, EGL), shader programs, the composite / present / HUD passes, recording, grabs."""
