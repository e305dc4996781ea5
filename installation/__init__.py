"""installation: a real-time runtime for camera-driven image-to-image art installations."""

__version__ = "0.1.0"
