"""Real GL (Mesa llvmpipe through EGL when there is no GPU): the composite and present shaders, read back."""

from __future__ import annotations

import numpy as np
import pytest

from installation.app import default_registry
from installation.core.params import ParamStore
from installation.render.projection import projection_matrix
from installation.render.renderer import COMPOSITE_MODES, Layers, Renderer, read_pixels
from installation.render.shaders import ShaderSet

S = 16
RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(colour: tuple[int, int, int], n: int = S) -> np.ndarray:
    return np.full((n, n, 3), colour, np.uint8)


def left_half_mask(n: int = S) -> np.ndarray:
    m = np.zeros((n, n), np.float32)
    m[:, : n // 2] = 1.0
    return m


@pytest.fixture
def store() -> ParamStore:
    return ParamStore(default_registry())


@pytest.fixture
def renderer(gl) -> Renderer:
    return Renderer(gl, content_size=S)


def composite(renderer: Renderer, store: ParamStore, mode: str, amount: float = 1.0, **layers) -> np.ndarray:
    store.set("mix/mode", mode)
    store.set("mix/amount", amount, ramp_s=0)
    renderer.upload(Layers(camera=layers.get("camera", solid(RED)), output=layers.get("output", solid(BLUE)),
                           mask=layers.get("mask", left_half_mask())))
    renderer.composite(store.publish())
    return renderer.content_picture()


def test_output_mode_shows_the_model_everywhere(renderer, store):
    pic = composite(renderer, store, "output")
    assert (pic == BLUE).all()


def test_person_mode_paints_the_model_on_the_person_only(renderer, store):
    pic = composite(renderer, store, "person")
    assert (pic[:, : S // 2] == BLUE).all()
    assert (pic[:, S // 2 + 1:] == RED).all()


def test_background_mode_paints_the_room_only(renderer, store):
    pic = composite(renderer, store, "background")
    assert (pic[:, : S // 2] == RED).all()
    assert (pic[:, S // 2 + 1:] == BLUE).all()


def test_blend_mode_mixes_by_amount(renderer, store):
    pic = composite(renderer, store, "blend", amount=0.5)
    assert np.allclose(pic[4, 4], (128, 0, 128), atol=2)


def test_camera_mode_and_no_model_show_the_camera(renderer, store):
    assert (composite(renderer, store, "camera") == RED).all()
    store.set("mix/mode", "output")
    renderer.upload(Layers(camera=solid(RED), output=None))
    renderer.composite(store.publish())
    assert (renderer.content_picture() == RED).all()


def test_feedback_keeps_trails_of_the_previous_composite(renderer, store):
    composite(renderer, store, "output")  # blue everywhere
    store.set("mix/feedback", 0.5, ramp_s=0)
    pic = composite(renderer, store, "camera")  # now red, half of last frame's blue remains
    assert np.allclose(pic[3, 3], (128, 0, 128), atol=2)


def test_every_mode_is_tested():
    tested = {"output", "person", "background", "blend", "camera"}
    assert tested == set(COMPOSITE_MODES)


def camera_on_screen(gl, store: ParamStore, picture: np.ndarray, screen: tuple[int, int]):
    """The camera picture composited, then presented on an offscreen screen; returns a function that
    presents it again with the store's current values and reads the screen back."""
    r = Renderer(gl, content_size=picture.shape[0])
    store.set("mix/mode", "camera")
    r.upload(Layers(camera=picture, output=None))
    content = r.composite(store.publish())
    target = gl.framebuffer(color_attachments=[gl.renderbuffer(screen, 3)])

    def shown() -> np.ndarray:
        r.present(store.publish(), target, screen, content)
        return read_pixels(target, screen)

    return shown


def test_texture_orientation_survives_the_whole_chain(gl, store):
    """A picture with a marked top-left corner comes out of present + readback the right way up."""
    cam = np.zeros((64, 64, 3), np.uint8)
    cam[:16, :16] = (255, 255, 255)
    store.set("pre/flip", False)
    shown = camera_on_screen(gl, store, cam, (64, 64))()
    assert shown[4, 4].min() > 200, "top-left marker should stay top-left"
    assert shown[60, 60].max() < 30


def test_present_fits_a_square_picture_into_a_wide_screen_with_bars(gl, store):
    present = camera_on_screen(gl, store, solid((200, 200, 200), 32), (64, 32))
    shown = present()
    assert shown[16, 2].max() == 0 and shown[16, 61].max() == 0, "bars at the sides"
    assert shown[16, 32].min() > 190
    store.set("display/fit", "stretch")
    assert present()[16, 2].min() > 190
    store.set("show/blackout", True)
    assert present().max() == 0


def test_gamma_brightens_mid_grey(gl, store):
    present = camera_on_screen(gl, store, solid((64, 64, 64), 8), (8, 8))
    before = int(present()[4, 4, 0])
    store.set("display/gamma", 2.2, ramp_s=0)
    after = int(present()[4, 4, 0])
    assert before == pytest.approx(64, abs=2)
    assert after == pytest.approx(255 * (64 / 255) ** (1 / 2.2), abs=3)


@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_projection_matrix_maps_screen_corners_to_content_corners(rotate):
    m = projection_matrix((100, 100), (50, 50), "stretch", rotate)
    def to_content(x: float, y: float) -> tuple[float, float]:
        p = m @ np.array([x, y, 1.0])
        return p[0] / p[2], p[1] / p[2]
    expected_tl = {0: (0, 0), 90: (0, 1), 180: (1, 1), 270: (1, 0)}[rotate]
    assert np.allclose(to_content(0, 0), expected_tl, atol=1e-5)


def test_corner_pin_moves_the_picture_corner():
    corners = ((0.1, 0.1), (0, 0), (0, 0), (0, 0))
    m = projection_matrix((100, 100), (100, 100), "stretch", corners=corners)
    p = m @ np.array([0.1, 0.1, 1.0])
    assert np.allclose(p[:2] / p[2], (0, 0), atol=1e-5), "content's top-left now sits at the pinned corner"


def test_mirror_x_swaps_left_and_right():
    m = projection_matrix((10, 10), (10, 10), "stretch", mirror_x=True)
    p = m @ np.array([0.0, 0.0, 1.0])
    assert np.allclose(p[:2] / p[2], (1, 0), atol=1e-5)


def test_broken_shader_on_reload_keeps_the_last_good_program(gl, tmp_path):
    from installation.render.shaders import SHADER_DIR

    for f in ("quad.vert", "composite.frag", "present.frag", "hud.frag", "enlarge.glsl"):
        (tmp_path / f).write_text((SHADER_DIR / f).read_text())
    shaders = ShaderSet(gl, tmp_path)
    good = shaders.programs["composite"]
    import os
    import time

    frag = tmp_path / "composite.frag"
    frag.write_text(frag.read_text().replace("void main() {", "void main() { this is not glsl;"))
    os.utime(frag, (time.time() + 5, time.time() + 5))
    assert shaders.reload_if_changed() == ["composite", "composite_sharp"]
    assert shaders.programs["composite"] is good
    assert "composite" in shaders.errors and "error" in shaders.errors["composite"].lower()
    frag.write_text((SHADER_DIR / "composite.frag").read_text())
    os.utime(frag, (time.time() + 10, time.time() + 10))
    shaders.reload_if_changed()
    assert "composite" not in shaders.errors and shaders.programs["composite"] is not good


def test_recorder_fills_the_time_each_picture_was_on_screen(tmp_path):
    """Two pictures shown half a second each at 30 fps: 15 frames of each, one second of video."""
    from installation.media.recorder import Recorder
    from tests.conftest import frames_of

    rec = Recorder(tmp_path / "o.mp4", (32, 24), 30.0)
    rec.write(np.full((24, 32, 3), (220, 30, 30), np.uint8), 100.0)
    rec.write(np.full((24, 32, 3), (30, 30, 220), np.uint8), 100.5)
    rec.close(101.0)
    frames = frames_of(tmp_path / "o.mp4")
    assert rec.frames == len(frames) == 30 and rec.seconds == pytest.approx(1.0)
    reds = [f[12, 16, 2] > 150 for f in frames]  # BGR: red is the last channel
    assert reds == [True] * 15 + [False] * 15


def test_recorder_counts_pictures_of_another_size_as_rejected_not_written(tmp_path):
    from installation.media.recorder import Recorder
    from tests.conftest import frames_of

    rec = Recorder(tmp_path / "o.mp4", (32, 24), 30.0, lockstep=True)
    for shape in ((24, 32, 3), (24, 32, 3), (48, 64, 3), (24, 32, 3), (30, 40, 3)):
        rec.write(np.full(shape, 128, np.uint8))
    rec.close()
    assert (rec.frames, rec.rejected) == (3, 2)
    assert len(frames_of(tmp_path / "o.mp4")) == 3


@pytest.mark.parametrize("mode", COMPOSITE_MODES)
@pytest.mark.parametrize("with_mask", [True, False])
def test_present_mixing_the_layers_shows_what_the_composite_pass_did(gl, store, mode, with_mask):
    """The person show's mix done in the present pass (one pass over the content's screen box) against
    the composite pass then present: the same picture on a wide screen, black outside the content box."""
    rng = np.random.default_rng(1)
    camera = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    output = rng.integers(0, 256, (S // 2, S // 2, 3), dtype=np.uint8)
    output[:, :3] = (10, 200, 90)  # a flat band where the person is (as wide as the cubic reads), to check the mix
    screen = (3 * S, S)
    store.set("mix/mode", mode)
    store.set("mix/amount", 0.75, ramp_s=0)
    pictures = []
    for fused in (False, True):
        r = Renderer(gl, content_size=S)
        r.upload(Layers(camera=camera, output=output, mask=left_half_mask() if with_mask else None))
        snap = store.publish()
        content = r.content_for(snap) if fused else r.composite(snap)
        assert (content is None) == fused
        fbo = gl.framebuffer(color_attachments=[gl.renderbuffer(screen, 3)])
        fbo.use()
        gl.clear(1.0, 1.0, 1.0, 1.0)  # stale white must not survive outside the content box
        r.present(snap, fbo, screen, content)
        pictures.append(read_pixels(fbo, screen).astype(int))
    composited, fused_pic = pictures
    assert (fused_pic[:, :S] == 0).all() and (fused_pic[:, 2 * S:] == 0).all(), "bars outside the content box"
    assert np.abs(fused_pic - composited).max() <= 2, "the same picture as composite + present"
    if mode == "person" and with_mask:  # and it is the mix asked for: the model on the left half only
        expected_left = 0.25 * camera[:, :2] + 0.75 * np.array((10, 200, 90))
        assert np.abs(fused_pic[:, S:S + 2] - expected_left).max() <= 2
        assert np.abs(fused_pic[:, 2 * S - 4:2 * S] - camera[:, S - 4:]).max() <= 1


def textured(n: int = 64) -> np.ndarray:
    """A picture with detail at every scale down to a texel: a fixed noise, as a look's foam or petals."""
    rng = np.random.default_rng(7)
    grey = rng.integers(40, 216, (n, n)).astype(np.uint8)
    return np.stack([grey, 255 - grey, grey // 2 + 60], axis=-1)


def shown(gl, store, picture: np.ndarray, upscale: str, mode: str = "output", feedback: float = 0.0) -> np.ndarray:
    """`picture` as the model's output, presented three times its size on a square screen."""
    side = 3 * picture.shape[0]
    store.set("display/upscale", upscale)
    store.set("mix/mode", mode)
    store.set("mix/feedback", feedback, ramp_s=0)
    r = Renderer(gl, content_size=side)
    r.upload(Layers(camera=solid((0, 0, 0), side), output=picture, mask=np.ones((side, side), np.float32)))
    snap = store.publish()
    fbo = gl.framebuffer(color_attachments=[gl.renderbuffer((side, side), 3)])
    r.present(snap, fbo, (side, side), r.content_for(snap))
    return read_pixels(fbo, (side, side))


@pytest.mark.parametrize(("mode", "feedback"), [("output", 0.0), ("person", 0.0), ("output", 0.5)],
                         ids=["model-texture", "mixed-in-present", "composite-pass"])
def test_sharp_upscale_keeps_the_texture_a_linear_one_blurs(gl, store, mode, feedback):
    """display/upscale "sharp" enlarges the model's picture with a cubic on every path a picture takes to
    the screen: the fine detail (the variance of the Laplacian, issue 25's figure) survives where a linear
    lookup smears it, the picture is the cubic's and not noise, and a flat picture stays flat (no ringing)."""
    import cv2

    from installation.training.quality import detail_figure

    pic = textured()
    side = 3 * pic.shape[0]
    sharp, smooth = (shown(gl, store, pic, u, mode, feedback) for u in ("sharp", "smooth"))
    if feedback:  # trails: the composite remembers a black first frame; compare against the same fold
        pic_sharp = 0.5 * cv2.resize(pic, (side, side), interpolation=cv2.INTER_CUBIC).astype(float)
        pic_smooth = 0.5 * cv2.resize(pic, (side, side), interpolation=cv2.INTER_LINEAR).astype(float)
    else:
        pic_sharp = cv2.resize(pic, (side, side), interpolation=cv2.INTER_CUBIC).astype(float)
        pic_smooth = cv2.resize(pic, (side, side), interpolation=cv2.INTER_LINEAR).astype(float)
    assert detail_figure(sharp) > 1.5 * detail_figure(smooth), (detail_figure(sharp), detail_figure(smooth))
    inner = (slice(6, -6), slice(6, -6))  # the edges clamp differently from OpenCV's border rule
    assert np.abs(sharp[inner] - pic_sharp[inner]).mean() < 4.0
    assert np.abs(smooth[inner] - pic_smooth[inner]).mean() < 2.0
    flat = shown(gl, store, solid((30, 160, 220), pic.shape[0]), "sharp", mode)
    assert np.abs(flat.astype(int) - (30, 160, 220)).max() <= 1


def test_an_included_shader_file_reloads_every_program_that_includes_it(gl, tmp_path):
    """enlarge.glsl is #include'd by the present and composite programs: a broken edit of it keeps them all
    drawing, each with the compiler's complaint, and its fix rebuilds them all."""
    import os
    import shutil
    import time

    from installation.render.shaders import SHADER_DIR

    shutil.copytree(SHADER_DIR, tmp_path, dirs_exist_ok=True)
    shaders = ShaderSet(gl, tmp_path)
    includers = sorted(n for n in shaders.specs if n.startswith(("present", "composite")))
    good = {n: shaders.programs[n] for n in includers}
    inc = tmp_path / "enlarge.glsl"
    inc.write_text(inc.read_text().replace("vec3 enlarged(", "vec3 enlarged(this is not glsl"))
    os.utime(inc, (time.time() + 5, time.time() + 5))
    assert sorted(shaders.reload_if_changed()) == includers
    assert all(shaders.programs[n] is good[n] for n in includers) and sorted(shaders.errors) == includers
    inc.write_text((SHADER_DIR / "enlarge.glsl").read_text())
    os.utime(inc, (time.time() + 10, time.time() + 10))
    assert sorted(shaders.reload_if_changed()) == includers and not shaders.errors
