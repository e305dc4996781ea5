"""Drawing: displays (window, EGL), shader programs and passes, projection maths, the HUD, CUDA -> GL
interop, grabs."""
