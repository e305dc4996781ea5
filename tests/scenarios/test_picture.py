"""What the screen shows, judged on the recording of `installation rehearse --headless`: blackout, the HUD,
freeze, fit/fill/stretch, rotation, mirror, corner pin and gamma, each the way its description in the
registry says; and the start-up failures of the picture (no EGL, a broken shader) as one clear line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from installation.render.shaders import SHADER_DIR
from tests.scenarios.conftest import INSTALLATION, cli_env, flat_model, frames_of, hud_after, identity_model, run_cli

GREY, RED, BLUE = (128, 128, 128), (220, 30, 30), (30, 30, 220)


def show_file(tmp_path: Path, model: Path, size: tuple[int, int] = (160, 90), content: int = 64,
              source: str = 'kind = "synthetic"\nwidth = 160\nheight = 90', name: str = "picture") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n[source]\n{source}\n[model]\npath = "{model}"\n'
                    f"[render]\nwidth = {size[0]}\nheight = {size[1]}\ncontent_size = {content}\n"
                    "[osc]\nenabled = false\n")
    return path


def make_test_card(path: Path, frames: int = 30, size: int = 96) -> Path:
    """A square clip: grey, a red square in the top-left corner, a blue square in the middle (a quarter of
    the side each). Square, so the model's centre-crop keeps all of it."""
    img = np.full((size, size, 3), GREY[::-1], np.uint8)
    q = size // 4
    img[:q, :q] = RED[::-1]
    img[3 * size // 8:5 * size // 8, 3 * size // 8:5 * size // 8] = BLUE[::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (size, size))
    for _ in range(frames):
        writer.write(img)
    writer.release()
    return path


def moving_clip(path: Path, frames: int, size: int = 96) -> Path:
    """A bar crossing the picture while the whole picture brightens: every frame differs everywhere by
    far more than the video codec's noise."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (size, size))
    for i in range(frames):
        img = np.full((size, size, 3), 30 + 5 * i, np.uint8)
        x = int(i * (size - 12) / max(frames - 1, 1))
        img[:, x:x + 12] = 255
        writer.write(img)
    writer.release()
    return path


def rehearse(tmp_path: Path, show: Path, *args: object, clip: Path | None = None, frames: int = 12,
             out: str = "out.mp4") -> list[np.ndarray]:
    """Rehearse to a recording; its frames as RGB."""
    video = tmp_path / out
    cmd: list[object] = ["rehearse", show, "--headless", "--frames", frames, "--record", video, *args]
    if clip is not None:
        cmd += ["--video", clip]
    r = run_cli(cmd, tmp_path)
    assert r.returncode == 0, r.stderr
    got = [f[:, :, ::-1] for f in frames_of(video)]
    assert got, "nothing recorded"
    return got


def card_on_screen(tmp_path: Path, *sets: str, size: tuple[int, int] = (160, 90), out: str = "out.mp4") -> np.ndarray:
    """The test card through an identity model, the camera not mirrored, with `--set` values; the last
    recorded picture (RGB)."""
    clip = tmp_path / "card.mp4"
    if not clip.exists():
        make_test_card(clip)
    model = tmp_path / "identity"
    if not model.exists():
        identity_model(model)
    show = show_file(tmp_path, model, size)
    args = [a for s in ("pre/flip=false", *sets) for a in ("--set", s)]
    return rehearse(tmp_path, show, *args, clip=clip, out=out)[-1].astype(int)


def colour_at(pic: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> str:
    """'red', 'blue', 'grey', 'black' or '?': the mean colour of a patch, by name."""
    r, g, b = pic[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    for name, (cr, cg, cb) in {"red": RED, "blue": BLUE, "grey": GREY, "black": (0, 0, 0)}.items():
        if max(abs(r - cr), abs(g - cg), abs(b - cb)) < 45:
            return name
    return "?"


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of the true pixels."""
    ys, xs = np.nonzero(mask)
    assert len(xs), "nothing found"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def is_blue(pic: np.ndarray) -> np.ndarray:
    return (pic[..., 2] > 150) & (pic[..., 0] < 90)


# ---- blackout and the HUD -----------------------------------------------------------------------

def test_blackout_is_black_everywhere_hud_included(tmp_path: Path) -> None:
    model = flat_model(tmp_path / "white", (240, 240, 240))
    show = show_file(tmp_path, model, (320, 180))
    frames = rehearse(tmp_path, show, "--set", "show/blackout=true", "--set", "hud/show=true", frames=15)
    brightest = max(int(f.max()) for f in frames)
    assert brightest <= 8, f"a pixel at {brightest} during blackout"


def test_the_hud_backdrop_fits_its_text(tmp_path: Path) -> None:
    flat = (40, 100, 160)
    model = flat_model(tmp_path / "flat", flat)
    show = show_file(tmp_path, model, (640, 360))
    # stretched, so the flat colour fills the screen: no black bars to mistake for the backdrop
    pic = rehearse(tmp_path, show, "--set", "hud/show=true", "--set", "display/fit=stretch", frames=20)[-1]
    pic = pic.astype(int)
    cv2.imwrite(str(tmp_path / "hud.png"), pic[:, :, ::-1].astype(np.uint8))
    lum = pic.mean(axis=2)
    flat_lum = float(np.mean(flat))
    backdrop = lum < 0.6 * flat_lum  # the translucent dark panel over the flat colour
    text = lum > flat_lum + 80  # light letters
    assert text.sum() > 200, "no HUD text found"
    bx0, by0, bx1, by1 = box_of(backdrop)
    tx0, ty0, tx1, ty1 = box_of(text)
    assert bx0 <= tx0 and by0 <= ty0 and tx1 <= bx1 and ty1 <= by1, \
        f"text {(tx0, ty0, tx1, ty1)} not all on the backdrop {(bx0, by0, bx1, by1)}"
    assert bx1 - tx1 <= 20, f"the backdrop runs {bx1 - tx1} px past the longest line"
    # beside and below the panel the model's colour is untouched
    for rest in (pic[by0:by1, bx1 + 4:], pic[by1 + 4:, :]):
        assert np.allclose(rest.reshape(-1, 3).mean(axis=0), flat, atol=4)


# ---- the display parameters ---------------------------------------------------------------------

def test_fit_shows_the_whole_square_with_bars_at_the_sides(tmp_path: Path) -> None:
    pic = card_on_screen(tmp_path, "display/fit=fit")
    assert colour_at(pic, 0, 90, 0, 30) == "black" and colour_at(pic, 0, 90, 130, 160) == "black"
    assert colour_at(pic, 40, 50, 40, 50) == "grey"
    x0, y0, x1, y1 = box_of(is_blue(pic))
    assert abs((x1 - x0) - (y1 - y0)) <= 3, "fit keeps the aspect"
    assert abs((x1 - x0 + 1) - 90 / 4) <= 3, "the whole 90 px tall square is on screen"


def test_fill_covers_the_screen_keeping_the_aspect(tmp_path: Path) -> None:
    pic = card_on_screen(tmp_path, "display/fit=fill")
    for x in (0, 159):
        assert colour_at(pic, 45, 80, x, x + 1) == "grey", "no bars with fill"
    x0, y0, x1, y1 = box_of(is_blue(pic))
    assert abs((x1 - x0) - (y1 - y0)) <= 3, "fill keeps the aspect"
    assert abs((x1 - x0 + 1) - 160 / 4) <= 3, "scaled to the screen's width (top and bottom cut)"


def test_stretch_covers_the_screen_without_keeping_the_aspect(tmp_path: Path) -> None:
    pic = card_on_screen(tmp_path, "display/fit=stretch")
    assert colour_at(pic, 40, 80, 0, 2) == "grey" and colour_at(pic, 40, 80, 158, 160) == "grey"
    assert colour_at(pic, 2, 18, 2, 35) == "red", "the whole card, its corner in the screen's corner"
    x0, y0, x1, y1 = box_of(is_blue(pic))
    assert (x1 - x0 + 1) / (y1 - y0 + 1) == pytest.approx(160 / 90, rel=0.15)


@pytest.mark.parametrize(("setting", "where"), [
    ("display/rotate=0", "top-left"), ("display/rotate=90", "top-right"), ("display/rotate=180", "bottom-right"),
    ("display/rotate=270", "bottom-left"), ("display/mirror_x=true", "top-right"),
    ("display/mirror_y=true", "bottom-left")])
def test_rotation_and_mirror_move_the_marked_corner(tmp_path: Path, setting: str, where: str) -> None:
    # fit on 160x90: the card is the 90x90 square at x 35..125; its red corner is 22 px on a side
    pic = card_on_screen(tmp_path, setting)
    corners = {"top-left": (3, 19, 38, 54), "top-right": (3, 19, 106, 122),
               "bottom-right": (71, 87, 106, 122), "bottom-left": (71, 87, 38, 54)}
    seen = {name: colour_at(pic, *box) for name, box in corners.items()}
    assert seen == {name: "red" if name == where else "grey" for name in corners}, (setting, seen)


def test_corner_pin_moves_the_named_corner_and_only_it(tmp_path: Path) -> None:
    """`display/tl_x` moves the picture's top-left corner right (+) by that fraction of the screen's
    width, `display/tl_y` down by a fraction of its height; the other corners stay."""
    from installation.app import default_registry

    registry = default_registry()
    assert "+ right" in registry["display/tl_x"].description and "+ down" in registry["display/tl_y"].description
    plain = card_on_screen(tmp_path, "display/fit=stretch", out="plain.mp4")
    pinned = card_on_screen(tmp_path, "display/fit=stretch", "display/tl_x=0.25", "display/tl_y=0.25",
                            out="pinned.mp4")
    cv2.imwrite(str(tmp_path / "pinned.png"), pinned[:, :, ::-1].astype(np.uint8))
    assert colour_at(plain, 0, 4, 0, 4) == "red"
    assert colour_at(pinned, 0, 8, 0, 20) == "black", "the top-left corner left the screen's corner"
    # the card's red corner (its red pixel nearest the screen's top-left) is now 40 px right, 22 down
    ys, xs = np.nonzero((pinned[..., 0] > 150) & (pinned[..., 2] < 90))
    i = int(np.argmin(xs + ys))
    assert abs(xs[i] - 40) <= 4 and abs(ys[i] - 22) <= 4, (xs[i], ys[i])
    # the other corners stay: the card's grey reaches the screen's corners there (the bottom-left patch
    # a few px in, clear of the slanted left edge)
    for y0, x0 in ((0, 154), (86, 154), (86, 6)):
        assert colour_at(pinned, y0, y0 + 4, x0, x0 + 6) == "grey", (y0, x0)


@pytest.mark.parametrize(("gamma", "expected"), [(2.0, 255 * (128 / 255) ** 0.5), (0.5, 255 * (128 / 255) ** 2)])
def test_gamma_lifts_or_darkens_mid_grey_as_described(tmp_path: Path, gamma: float, expected: float) -> None:
    from installation.app import default_registry

    desc = default_registry()["display/gamma"].description
    assert "above 1 brightens" in desc and "below 1 darkens" in desc, desc
    model = flat_model(tmp_path / "grey", GREY)
    show = show_file(tmp_path, model)
    pic = rehearse(tmp_path, show, "--set", f"display/gamma={gamma}", "--set", "display/fit=stretch")[-1]
    assert pic[20:70, 20:140].mean() == pytest.approx(expected, abs=6)


def test_freeze_holds_the_picture_while_it_is_on(tmp_path: Path) -> None:
    """A moving clip through an identity model; /show/freeze 1 at source frame 10 and 0 at frame 25 (an
    OSC replay, by frame under --lockstep): the recording stops changing in between, and only there."""
    clip = moving_clip(tmp_path / "moving.mp4", 40)
    model = identity_model(tmp_path / "identity")
    show = show_file(tmp_path, model)
    replay = tmp_path / "freeze.jsonl"
    replay.write_text("".join(json.dumps({"t": 0.0, "frame": f, "address": "/show/freeze", "args": [v]}) + "\n"
                              for f, v in ((10, 1), (25, 0))))
    frames = rehearse(tmp_path, show, "--lockstep", "--osc-replay", replay, clip=clip, frames=38)
    change = [float(np.abs(frames[i].astype(int) - frames[i - 1]).mean()) for i in range(1, len(frames))]
    still = [c < 1.0 for c in change]
    # the frozen run: at least 12 unchanged steps in a row, around frames 10..25
    best, run, end = 0, 0, 0
    for i, s in enumerate(still):
        run = run + 1 if s else 0
        if run > best:
            best, end = run, i + 1
    assert best >= 12, f"longest still run {best} ({[round(c, 1) for c in change]})"
    assert 8 <= end - best <= 13 and 22 <= end <= 28, (end - best, end)
    assert not any(still[:end - best - 1]) and not any(still[end + 1:]), ("the clip moves outside the freeze",
                                                                        " ".join(f"{c:.1f}" for c in change))


# ---- start-up failures of the picture -----------------------------------------------------------

def start_failure(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    model = flat_model(tmp_path / "flat", GREY)
    show = show_file(tmp_path, model)
    return subprocess.run([INSTALLATION, "rehearse", str(show), "--headless", "--frames", "5"], capture_output=True,
                          text=True, timeout=120, env={**cli_env(tmp_path), **env}, cwd=tmp_path)


def one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_no_egl_is_one_clear_line(tmp_path: Path) -> None:
    # glvnd finds no EGL vendor at all: the offscreen context can't be made
    line = one_error_line(start_failure(tmp_path, {"__EGL_VENDOR_LIBRARY_FILENAMES": "/nonexistent"}))
    assert "EGL" in line, line


def test_a_shader_that_fails_to_compile_at_start_is_one_clear_line(tmp_path: Path) -> None:
    shaders = tmp_path / "shaders"
    shutil.copytree(SHADER_DIR, shaders)
    frag = shaders / "present.frag"
    frag.write_text(frag.read_text().replace("void main() {", "void main() { this is not glsl;", 1))
    line = one_error_line(start_failure(tmp_path, {"INSTALLATION_SHADER_DIR": str(shaders)}))
    assert "present" in line and str(frag) in line, line


def test_the_shader_folder_setting_is_used(tmp_path: Path) -> None:
    """INSTALLATION_SHADER_DIR really replaces the programs: a copy whose present pass paints green."""
    shaders = tmp_path / "shaders"
    shutil.copytree(SHADER_DIR, shaders)
    frag = shaders / "present.frag"
    frag.write_text(frag.read_text().replace("f_color = vec4(c, 1.0);", "f_color = vec4(0.0, 1.0, 0.0, 1.0);"))
    model = flat_model(tmp_path / "flat", GREY)
    show = show_file(tmp_path, model)
    video = tmp_path / "green.mp4"
    r = subprocess.run([INSTALLATION, "rehearse", str(show), "--headless", "--frames", "5", "--record", str(video)],
                       capture_output=True, text=True, timeout=120,
                       env={**cli_env(tmp_path), "INSTALLATION_SHADER_DIR": str(shaders)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pic = frames_of(video)[-1][:, :, ::-1]
    assert colour_at(pic.astype(int), 30, 60, 60, 100) == "?" and pic[30:60, 60:100, 1].mean() > 200


# ---- what the technician reads off the HUD ------------------------------------------------------

def test_the_hud_says_the_cameras_frame_size_and_its_reconnects(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.scenarios.conftest import make_clip

    monkeypatch.setenv("INSTALLATION_STATE_DIR", str(tmp_path / "state-root"))
    model = flat_model(tmp_path / "flat", GREY)
    clip = make_clip(tmp_path / "odd.mp4", frames=10, size=(120, 80))
    lines = hud_after(show_file(tmp_path, model), 1.0, video=clip)
    source_line = next(ln for ln in lines if "source" in ln and "reconnects" in ln)
    assert "120x80" in source_line and "reconnects 0" in source_line, lines
    # a camera that isn't there: it is tried again and again, and the HUD counts the attempts
    missing = show_file(tmp_path, model, source='kind = "camera"\ncamera = "/dev/no-such-camera"', name="nocam")
    lines = hud_after(missing, 1.5)
    source_line = next(ln for ln in lines if "source" in ln and "reconnects" in ln)
    n = int(source_line.split("reconnects")[1].split()[0])
    assert n >= 1 and "no frame yet" in source_line, lines


def test_freeze_from_the_start_holds_the_first_picture_not_black(tmp_path: Path) -> None:
    clip = moving_clip(tmp_path / "moving.mp4", 30)
    model = identity_model(tmp_path / "identity")
    show = show_file(tmp_path, model)
    frames = rehearse(tmp_path, show, "--lockstep", "--set", "show/freeze=true", "--set", "display/fit=stretch",
                      clip=clip, frames=20)
    assert frames[0].mean() > 30, "a picture is held, not the empty screen"
    change = max(float(np.abs(frames[i].astype(int) - frames[i - 1]).mean()) for i in range(1, len(frames)))
    assert change < 1.0, f"the held picture changed by {change:.1f} levels"
