"""Displays: the GL context and the surface a show presents to: a pyglet window (fullscreen on a chosen
screen, or a window) or an EGL offscreen framebuffer (headless); the screens this machine has."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from installation.core.errors import UserError
from installation.render.renderer import read_pixels

log = logging.getLogger("installation.render")


class HeadlessDisplay:
    """An offscreen target on an EGL context: the same shaders, no screen needed."""

    headless = True

    def __init__(self, size: tuple[int, int] = (1280, 720)) -> None:
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as e:  # moderngl raises a bare Exception (no device, no driver, eglInitialize failed)
            raise UserError(f"can't render offscreen: no EGL context ({str(e).strip() or type(e).__name__})",
                            expected="Mesa's EGL and GL drivers (apt-get install libegl1 libgl1-mesa-dri), "
                                     "or a GPU driver with EGL") from None
        self.size = size
        self._colour = self.ctx.renderbuffer(size, 3)
        self.fbo = self.ctx.framebuffer(color_attachments=[self._colour])
        self.should_close = False
        self.on_key: Any = None

    @property
    def renderer_name(self) -> str:
        return str(self.ctx.info.get("GL_RENDERER", "?"))

    def poll(self) -> None:
        pass

    def flip(self) -> None:
        pass

    def read(self) -> np.ndarray:
        return read_pixels(self.fbo, self.size)

    def close(self) -> None:
        self.ctx.release()


class WindowDisplay:
    """A pyglet window with moderngl on its context: fullscreen on a chosen screen, cursor hidden."""

    headless = False

    def __init__(self, fullscreen: bool = True, screen: int = 0, size: tuple[int, int] = (1280, 720),
                 vsync: bool = True, title: str = "installation") -> None:
        import moderngl
        import pyglet

        display = pyglet.display.get_display()
        screens = display.get_screens()
        chosen = screens[min(screen, len(screens) - 1)]
        # Fullscreen takes the screen's own mode: asking for a size would try to switch modes.
        size_args = {} if fullscreen else {"width": size[0], "height": size[1]}
        config = pyglet.gl.Config(double_buffer=True, major_version=3, minor_version=3, forward_compatible=True)
        try:
            self.window = pyglet.window.Window(fullscreen=fullscreen, screen=chosen, vsync=vsync, caption=title,
                                               config=config, resizable=not fullscreen, **size_args)
        except pyglet.window.NoSuchConfigException:
            self.window = pyglet.window.Window(fullscreen=fullscreen, screen=chosen, vsync=vsync, caption=title,
                                               resizable=not fullscreen, **size_args)
        self.window.set_mouse_visible(not fullscreen)
        self.ctx = moderngl.create_context()
        self.should_close = False
        self.on_key: Any = None
        self.window.push_handlers(on_key_press=self._key, on_close=self._close)

    @property
    def renderer_name(self) -> str:
        return str(self.ctx.info.get("GL_RENDERER", "?"))

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.window.get_framebuffer_size())  # type: ignore[return-value]

    @property
    def fbo(self) -> Any:
        # the window's own framebuffer: detect_framebuffer() returns whichever is bound, the composite's
        # offscreen target after the first pass, so the window stayed black
        return self.ctx.screen

    def _key(self, symbol: int, modifiers: int) -> bool:
        if self.on_key:
            self.on_key(symbol, modifiers)
        return True  # swallow Escape: a visitor pressing a key must not end the show

    def _close(self) -> bool:
        self.should_close = True
        return True

    def set_fullscreen(self, on: bool) -> None:
        self.window.set_fullscreen(on)
        self.window.set_mouse_visible(not on)

    def poll(self) -> None:
        self.window.dispatch_events()

    def flip(self) -> None:
        self.window.flip()

    def read(self) -> np.ndarray:
        out = read_pixels(self.ctx.screen, self.size)
        _ = self.ctx.error  # moderngl's read of the default framebuffer flags GL_INVALID_OPERATION (the
        # pixels are right); left set, pyglet raises it at the next checked call, closing the window
        return out

    def close(self) -> None:
        self.window.close()


def has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def list_screens() -> list[str]:
    if not has_screen():
        return []
    try:
        import pyglet

        return [f"{i}: {s.width}x{s.height} at {s.x},{s.y}"
                for i, s in enumerate(pyglet.display.get_display().get_screens())]
    except Exception as e:
        return [f"(can't list screens: {e})"]
