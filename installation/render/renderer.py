"""Drawing: textures, the layers of a frame, the composite -> present -> HUD passes (through shaders.py's
programs) and the readback. The contexts they draw into are displays.py's; the screen maths projection.py's.

Everything here runs on the main thread: GL contexts belong to one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.params import Param
from installation.render.projection import content_box, matrix_from_snapshot
from installation.render.shaders import ShaderSet, composite_program, present_program

log = logging.getLogger("installation.render")

COMPOSITE_MODES = ("output", "person", "background", "blend", "camera")
UPSCALES = ("sharp", "smooth")  # display/upscale: the model's picture enlarged by a cubic, or a linear lookup


def _p(name: str, kind: str, default: Any, lo: float | None = None, hi: float | None = None, desc: str = "",
       unit: str = "", choices: tuple[str, ...] = (), smoothing_s: float = 0.0, persist: bool = True) -> Param:
    return Param(name, kind, default, lo, hi, choices, unit, desc, smoothing_s, persist)  # type: ignore[arg-type]


PARAMS: list[Param] = [
    _p("mix/mode", "choice", "output", choices=COMPOSITE_MODES,
       desc="what the model paints: everything, the person only, the background only, a blend, or nothing"),
    _p("mix/amount", "float", 1.0, 0, 1, "the model picture's opacity", smoothing_s=0.15),
    _p("mix/feedback", "float", 0.0, 0, 0.98, "trails: blend each composite with the previous one",
       smoothing_s=0.15),
    _p("display/fit", "choice", "fit", choices=("fit", "fill", "stretch"),
       desc="the picture on a screen of another aspect: whole picture, fill the screen, or stretch"),
    _p("display/rotate", "choice", "0", choices=("0", "90", "180", "270"), desc="rotate clockwise", unit="deg"),
    _p("display/mirror_x", "bool", False, desc="mirror left-right (rear projection)"),
    _p("display/mirror_y", "bool", False, desc="mirror top-bottom (ceiling mount)"),
    *[_p(f"display/{c}_{a}", "float", 0.0, -0.5, 0.5,
         f"corner pin: move the picture's {c.upper()} corner along {a} "
         f"({'+ right, in screen widths' if a == 'x' else '+ down, in screen heights'})",
         unit="screen") for c in ("tl", "tr", "br", "bl") for a in ("x", "y")],
    _p("display/upscale", "choice", "sharp", choices=UPSCALES,
       desc="how the model's picture is enlarged to the screen: sharp keeps its texture (a cubic), "
            "smooth is softer and a little cheaper on a CPU (linear)"),
    _p("display/gamma", "float", 1.0, 0.2, 5.0,
       "projector gamma correction: above 1 brightens the mid-tones, below 1 darkens them (out = in^(1/gamma))",
       smoothing_s=0.1),
    _p("colour/brightness", "float", 1.0, 0, 2, "brightness multiplier", smoothing_s=0.1),
    _p("colour/contrast", "float", 1.0, 0, 3, "contrast around mid-grey", smoothing_s=0.1),
    _p("colour/saturation", "float", 1.0, 0, 3, "0: grey, 1: as is", smoothing_s=0.1),
    _p("display/monitor", "bool", False, desc="tuning view: camera, model input, mask and output side by side",
       persist=False),
    _p("hud/show", "bool", False, desc="heads-up display: fps, latency, faults, messages"),
]


# the present pass's colour grade; all at 1 it is the identity, and the ungraded program is used
GRADE_PARAMS = ("display/gamma", "colour/brightness", "colour/contrast", "colour/saturation")

# the monitor view's tiles, left to right, top to bottom: (layer, column, row)
MONITOR_TILES = (("camera", 0, 0), ("model_input", 1, 0), ("mask", 0, 1), ("out_a", 1, 1))


def mix_weights(mode: str, amount: float, has_model: bool, has_mask: bool) -> dict[str, float]:
    """mix/mode as three numbers, so the shaders mix without a branch per mode (llvmpipe would run every
    branch): picture = mix(camera * cam_gain, model, clamp(w0 + w1 * mask)). Without a mask the mask counts
    as 1 everywhere (the whole picture is 'person'), folded into w0 here."""
    if not has_model or mode == "camera":
        gain, w0, w1 = 1.0, 0.0, 0.0
    elif mode == "output":
        gain, w0, w1 = 0.0, amount, 0.0  # the model over black: model * amount
    elif mode == "person":
        gain, w0, w1 = 1.0, 0.0, amount
    elif mode == "background":
        gain, w0, w1 = 1.0, amount, -amount
    else:  # blend
        gain, w0, w1 = 1.0, amount, 0.0
    if not has_mask:
        w0, w1 = w0 + w1, 0.0
    return {"u_cam_gain": gain, "u_w0": w0, "u_w1": w1}


class Texture:
    """A texture that follows the shape of what is uploaded into it."""

    def __init__(self, ctx: Any, components: int = 3, dtype: str = "f1") -> None:
        self.ctx = ctx
        self.components = components
        self.dtype = dtype
        self.tex: Any = None
        self.shape: tuple[int, ...] = ()
        self._interop: Any = None  # interop.GLInterop once a CUDA tensor was uploaded
        self._pending: np.ndarray | Callable[[], np.ndarray | None] | None = None  # uploaded at the next use()

    def ensure(self, w: int, h: int, components: int | None = None) -> Any:
        c = components or self.components
        if self.tex is None or self.shape != (h, w) or self.tex.components != c:
            if self._interop is not None:  # unregister from CUDA before GL deletes the texture
                self._interop.close()
                self._interop = None
            if self.tex is not None:
                self.tex.release()
            self.tex = self.ctx.texture((w, h), c, dtype=self.dtype)
            self.tex.filter = (self.ctx.LINEAR, self.ctx.LINEAR)
            self.tex.repeat_x = self.tex.repeat_y = False
            if c == 1:  # a mask reads as grey wherever .rgb is taken (the monitor's mask tile)
                self.tex.swizzle = "RRR1"
            self.shape = (h, w)
        return self.tex

    def upload(self, a: np.ndarray) -> Any:
        if getattr(a, "is_cuda", False):
            return self.upload_device(a)
        h, w = a.shape[:2]
        tex = self.ensure(w, h)
        tex.write(np.ascontiguousarray(a))
        return tex

    def upload_device(self, t: Any) -> Any:
        """An HxWx4 uint8 CUDA tensor (the GPU frame path's output) copied device-to-device into an
        RGBA8 texture through CUDA-GL interop: no download to the CPU and no re-upload."""
        from installation.render.interop import GLInterop

        h, w = int(t.shape[0]), int(t.shape[1])
        tex = self.ensure(w, h, components=4)
        if self._interop is None:
            self._interop = GLInterop(tex)
        self._interop.copy(t)
        return tex

    def stage(self, a: np.ndarray | Callable[[], np.ndarray | None]) -> None:
        """Upload on first use rather than now: a layer no pass reads this frame (the camera while the
        model's picture fills the screen) costs nothing; given a function, not even its making."""
        self._pending = a

    def use(self, location: int) -> None:
        pending, self._pending = self._pending, None
        if callable(pending):
            pending = pending()
        if pending is not None:
            self.upload(pending.astype(np.float32, copy=False) if self.dtype == "f4" else pending)
        if self.tex is None:
            self.upload(np.zeros((1, 1, self.components), np.uint8 if self.dtype == "f1" else np.float32))
        self.tex.use(location)


class Layers:
    """What the inference worker produced for one frame, ready to upload.

    camera: HxWx3 uint8, the camera picture aligned with the model (flip + crop); output: the model's
    picture (None: no model); mask: HxW float32 [0, 1]; model_input: for the monitor view; output_b:
    the incoming model during a crossfade. Given `view` instead of camera and mask, the flip and crop are
    done when something first reads them: in the plain case no pass does, and the GPU path's worker then
    never touches the full-size picture on the CPU.
    """

    def __init__(self, camera: np.ndarray | None = None, output: Any = None, mask: np.ndarray | None = None,
                 model_input: np.ndarray | None = None, output_b: Any = None, *,
                 view: Callable[[], tuple[np.ndarray, np.ndarray | None]] | None = None,
                 has_mask: bool = False) -> None:
        self._camera, self._mask, self._view = camera, mask, view
        self.has_mask = mask is not None if view is None else has_mask
        self.output, self.model_input, self.output_b = output, model_input, output_b

    def _resolve(self) -> None:
        view = self._view
        if view is not None:  # two readers may both compute it: the same pure result, no lock needed
            self._camera, self._mask = view()
            self._view = None

    @property
    def camera(self) -> np.ndarray:
        self._resolve()
        assert self._camera is not None
        return self._camera

    @property
    def mask(self) -> np.ndarray | None:
        self._resolve()
        return self._mask


class Renderer:
    """The three passes: composite (content, square) -> present (screen) -> HUD."""

    def __init__(self, ctx: Any, content_size: int = 720, shader_dir: Path | None = None) -> None:
        self.ctx = ctx
        self.shaders = ShaderSet(ctx, shader_dir)
        self.content_size = content_size
        self.camera = Texture(ctx)
        self.mask = Texture(ctx, 1, "f4")
        self.out_a = Texture(ctx)
        self.out_b = Texture(ctx)
        self.model_input = Texture(ctx)
        self.hud = Texture(ctx, 4)
        self._ping = [self._content_fbo() for _ in range(2)]
        self._frame = 0
        self.content: Any = self._ping[0][0]  # what the last present showed (redrawn as is on freeze)
        self.has_model = False
        self.has_mask = False
        self.has_b = False
        self._scaled: tuple[Any, Any] | None = None  # (renderbuffer, framebuffer) of a scaled present

    def _content_fbo(self) -> tuple[Any, Any]:
        s = self.content_size
        tex = self.ctx.texture((s, s), 3)
        tex.filter = (self.ctx.LINEAR, self.ctx.LINEAR)
        tex.repeat_x = tex.repeat_y = False
        fbo = self.ctx.framebuffer(color_attachments=[tex])
        fbo.use()
        self.ctx.clear(0, 0, 0, 1)
        return tex, fbo

    def upload(self, layers: Layers, monitor: bool = False) -> None:
        self.camera.stage(lambda: layers.camera)  # made and uploaded when a pass reads it (Texture.stage)
        self.has_model = layers.output is not None
        if layers.output is not None:
            self.out_a.upload(layers.output)
        self.has_b = layers.output_b is not None
        if layers.output_b is not None:
            self.out_b.upload(layers.output_b)
        self.has_mask = layers.has_mask
        if layers.has_mask:
            self.mask.stage(lambda: layers.mask)
        if monitor and layers.model_input is not None:
            self.model_input.stage(layers.model_input)

    def _mix(self, snap: Any) -> dict[str, float]:
        return mix_weights(snap["mix/mode"], float(snap["mix/amount"]), self.has_model, self.has_mask)

    def composite(self, snap: Any, crossfade: float = 0.0) -> Any:
        """Mix camera, mask and model into the content texture; returns that texture."""
        src_tex, _ = self._ping[self._frame % 2]
        dst_tex, dst_fbo = self._ping[(self._frame + 1) % 2]
        self._frame += 1
        self.camera.use(0)
        self.mask.use(1)
        self.out_a.use(2)
        (self.out_b if self.has_b else self.out_a).use(3)
        src_tex.use(4)
        s = self.content_size
        program = composite_program(snap["display/upscale"] == "sharp")
        self.shaders.set(program, u_camera=0, u_mask=1, u_out_a=2, u_out_b=3, u_prev=4, u_size=(s, s),
                         u_crossfade=float(crossfade) if self.has_b else 0.0,
                         u_feedback=float(snap["mix/feedback"]), **self._mix(snap))
        dst_fbo.use()
        self.ctx.viewport = (0, 0, s, s)
        self.ctx.disable(self.ctx.BLEND)
        self.shaders.draw(program)
        self.content = dst_tex
        return dst_tex

    def content_for(self, snap: Any, crossfade: float = 0.0) -> Any:
        """What to present: a texture, or None when the present pass mixes the layers itself.

        - The plain case (the model's picture at full opacity, no trails, no crossfade): the model's own
          texture; a composite pass would only resample it.
        - Any other mix without trails or a crossfade (the person show): None. The present pass reads
          camera, mask and model and mixes them in one pass over the content's screen box; a composite
          pass first cost llvmpipe 8 ms of a 12 ms draw at 720x720 (docs/performance.md).
        - Trails or a crossfade: the composite pass, which remembers the last composite.
        The monitor view shows none of these, so while it is on no pass is drawn for them."""
        has_b = self.has_b and crossfade > 0.0
        trails = float(snap["mix/feedback"]) > 0.0
        if self.has_model and not has_b and not trails and snap["mix/mode"] == "output" \
                and float(snap["mix/amount"]) >= 1.0 and self.out_a.tex is not None:
            self.content = self.out_a.tex
        elif (not has_b and not trails) or snap["display/monitor"]:
            self.content = None
        else:
            self.content = self.composite(snap, crossfade)
        return self.content

    def present(self, snap: Any, target: Any, size: tuple[int, int], content: Any, scale: float = 1.0) -> None:
        """Draw `content` (a texture; None: mix the layers here) onto the screen target. With `scale` below 1
        (the governor's render scale) the pass draws that share of the screen's resolution into a
        framebuffer of its own and a blit scales it up: llvmpipe shades a pixel at a time, so the pass
        costs about scale^2 of its full-size time, the blit a few ms (docs/performance.md)."""
        if scale < 1.0 and blit_available():
            small = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            fbo = self._scaled_fbo(small)
            self.present(snap, fbo, small, content)
            blit(fbo, target, small, size)
            target.use()
            return
        target.use()
        self.ctx.viewport = (0, 0, *size)
        graded = any(float(snap[k]) != 1.0 for k in GRADE_PARAMS)
        if snap["display/monitor"]:
            self.present_monitor(snap, size, graded)
            return
        mixed = content is None
        if mixed:
            self.camera.use(1)
            self.mask.use(2)
            self.out_a.use(3)
        else:
            content.use(0)
        m = matrix_from_snapshot(snap, size, (self.content_size, self.content_size))
        box = content_box(m, size)
        if box is not None:  # shade only where the content lands; the bars are a plain clear
            self.ctx.clear(0.0, 0.0, 0.0, 1.0)
            self.ctx.scissor = box
        sharp = snap["display/upscale"] == "sharp" and (mixed or content is self.out_a.tex)
        self._draw_present(present_program(mixed, graded, sharp), snap, size, m, self._mix(snap) if mixed else {})
        self.ctx.scissor = None

    def warm_up(self, snap: Any, target: Any, size: tuple[int, int], camera: tuple[int, int],
                output: int, mask: bool) -> None:
        """Draw once with black layers of the show's sizes (camera WxH, the model's square side, a mask or
        not), directly and at a render scale with its blit, then clear the target: llvmpipe compiles a
        program the first time it draws with it, which cost the first frame of a 2-core machine 200 ms.
        What the next upload brings replaces every layer."""
        w, h = camera
        self.upload(Layers(np.zeros((h, w, 3), np.uint8), np.zeros((output, output, 3), np.uint8),
                           np.zeros((h, w), np.float32) if mask else None))
        for scale in (1.0, 0.75):
            self.present(snap, target, size, self.content_for(snap), scale=scale)
        target.use()
        self.ctx.clear(0.0, 0.0, 0.0, 1.0)
        finish(self.ctx)

    def _scaled_fbo(self, size: tuple[int, int]) -> Any:
        if self._scaled is None or self._scaled[0].size != size:
            if self._scaled is not None:
                self._scaled[1].release()
                self._scaled[0].release()
            rb = self.ctx.renderbuffer(size, 3)
            self._scaled = (rb, self.ctx.framebuffer(color_attachments=[rb]))
        return self._scaled[1]

    def present_monitor(self, snap: Any, size: tuple[int, int], graded: bool) -> None:
        """The tuning view: camera, model input, mask and output, a quarter of the screen each. Each tile is
        the plain present program scissored to its quarter, one texture read a pixel: one program reading
        all four layers and picking by position cost llvmpipe 20 ms a frame at 1280x720 (four reads a pixel)."""
        w, h = size
        program = present_program(False, graded)
        for layer, col, row in MONITOR_TILES:
            getattr(self, layer).use(0)
            x0, x1 = col * w // 2, (col + 1) * w // 2
            y0, y1 = (1 - row) * h // 2, (2 - row) * h // 2  # GL's rows count from the bottom
            self.ctx.scissor = (x0, y0, x1 - x0, y1 - y0)
            # screen [0, 1]^2 (top-left origin) -> this tile's texture coordinates
            m = np.array([[2, 0, -col], [0, 2, -row], [0, 0, 1]], np.float32)
            self._draw_present(program, snap, size, m, {})
        self.ctx.scissor = None

    def _draw_present(self, program: str, snap: Any, size: tuple[int, int], m: np.ndarray,
                      mix: dict[str, float]) -> None:
        self.shaders.set(program, u_content=0, u_camera=1, u_mask=2, u_output=3,
                         u_screen_to_content=m, u_screen=size, u_gamma=float(snap["display/gamma"]),
                         u_brightness=float(snap["colour/brightness"]), u_contrast=float(snap["colour/contrast"]),
                         u_saturation=float(snap["colour/saturation"]),
                         u_blackout=bool(snap["show/blackout"]), **mix)
        self.shaders.draw(program)

    def draw_hud(self, overlay: np.ndarray | None, target: Any, size: tuple[int, int]) -> None:
        if overlay is None:
            return
        if overlay is not getattr(self, "_hud_src", None):
            self.hud.upload(overlay)
            self._hud_src = overlay
        target.use()
        self.ctx.viewport = (0, 0, *size)
        self.ctx.enable(self.ctx.BLEND)
        self.ctx.blend_func = self.ctx.SRC_ALPHA, self.ctx.ONE_MINUS_SRC_ALPHA
        self.hud.use(0)
        h, w = overlay.shape[:2]
        self.shaders.set("hud", u_hud=0, u_origin=(12.0, 12.0), u_hud_size=(float(w), float(h)), u_screen=size)
        # the overlay's rectangle only: shading the whole screen to discard it cost llvmpipe ~10 ms a frame
        self.ctx.scissor = (12, max(0, size[1] - 12 - h), w, h)
        self.shaders.draw("hud")
        self.ctx.scissor = None
        self.ctx.disable(self.ctx.BLEND)

    def frame(self, snap: Any, target: Any, size: tuple[int, int], overlay: np.ndarray | None,
              crossfade: float = 0.0) -> None:
        content = self.composite(snap, crossfade)
        self.present(snap, target, size, content)
        if snap["hud/show"] and not snap["show/blackout"]:  # blackout is black, HUD included
            self.draw_hud(overlay, target, size)

    def content_picture(self) -> np.ndarray:
        """The last composite, read back as HxWx3 uint8 (picture convention)."""
        tex, _ = self._ping[self._frame % 2]
        s = self.content_size
        return np.frombuffer(tex.read(), np.uint8).reshape(s, s, 3).copy()


_GL: Any = None
GL_READ_FRAMEBUFFER, GL_DRAW_FRAMEBUFFER, GL_COLOR_BUFFER_BIT, GL_LINEAR = 0x8CA8, 0x8CA9, 0x4000, 0x2601


def _gl() -> Any:
    """libGL through ctypes, for the calls moderngl does not offer (None where there is none)."""
    global _GL
    if _GL is None:
        import ctypes

        _GL = False
        for name in ("libGL.so.1", "libOpenGL.so.0"):
            try:
                lib = ctypes.CDLL(name)
                lib.glFinish.restype = lib.glBlitFramebuffer.restype = lib.glBindFramebuffer.restype = None
                _GL = lib
                break
            except (OSError, AttributeError):
                continue
    return _GL or None


def finish(ctx: Any) -> None:
    """Wait until the GL work is done, letting other Python threads run meanwhile. moderngl's
    ctx.finish() holds the GIL while it waits, which stalled the inference thread for the whole
    rasterization (on llvmpipe) or GPU drain; glFinish through ctypes releases it."""
    gl = _gl()
    if gl is not None:
        gl.glFinish()  # glvnd: goes to this thread's current context
    else:
        ctx.finish()


def blit_available() -> bool:
    return _gl() is not None


def blit(src: Any, dst: Any, src_size: tuple[int, int], dst_size: tuple[int, int]) -> None:
    """Scale one framebuffer's colour into another with linear filtering (glBlitFramebuffer: moderngl's
    copy_framebuffer copies without scaling)."""
    gl = _gl()
    gl.glBindFramebuffer(GL_READ_FRAMEBUFFER, src.glo)
    gl.glBindFramebuffer(GL_DRAW_FRAMEBUFFER, dst.glo)
    gl.glBlitFramebuffer(0, 0, *src_size, 0, 0, *dst_size, GL_COLOR_BUFFER_BIT, GL_LINEAR)


def read_pixels(fbo: Any, size: tuple[int, int]) -> np.ndarray:
    """What a framebuffer holds, as HxWx3 uint8 RGB, top row first."""
    w, h = size
    data = fbo.read(viewport=(0, 0, w, h), components=3, alignment=1)
    return np.flipud(np.frombuffer(data, np.uint8).reshape(h, w, 3))


# ---- displays ----------------------------------------------------------------------------------


# ---- recording ---------------------------------------------------------------------------------

