"""Segmentation with the real MediaPipe model, real keying and the real worker thread.

The selfie model files ship with the package (models/segmenters, package data in the wheel): missing, the
model's tests fail here rather than skip.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from installation.core.errors import UserError
from installation.core.params import Registry
from installation.vision import preprocess, segment, segment_cli
from installation.vision.segment import (
    BackgroundSegmenter,
    ChromaSegmenter,
    MaskTreatment,
    SegmenterMissingError,
    SelfieSegmenter,
    default_values,
    make_segmenter,
    segment_frame,
)
from installation.vision.segment_worker import SegmentWorker

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "fetch_segmenters.py"  # checks the shipped files' hashes
KEY_RGB = np.array([0, 177, 64], np.float32)  # the default key, chroma-key green


# ---- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def models_dir() -> Path:
    d = segment.DEFAULT_MODELS_DIR
    proc = subprocess.run([sys.executable, str(CHECK)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"the shipped selfie models are not as recorded:\n{proc.stdout}\n{proc.stderr}"
    return d


@pytest.fixture(scope="module")
def selfie(models_dir: Path) -> Iterator[SelfieSegmenter]:
    with SelfieSegmenter(models_dir) as s:
        yield s


@pytest.fixture(scope="module")
def cutout(selfie: SelfieSegmenter) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut photograph and her silhouette (bool), cut out by the selfie model."""
    rgb = skimage.data.astronaut()
    selfie.configure({"seg/model": "square"})
    mask = selfie.segment(rgb) > 0.5
    assert 0.3 < mask.mean() < 0.8, "the selfie model should find a person filling about half the photo"
    return rgb, mask


def paste(backdrop: np.ndarray, rgb: np.ndarray, mask: np.ndarray, y: int, x: int,
          ) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out person on a backdrop, and where she is (bool, backdrop-sized)."""
    out = backdrop.copy()
    where = np.zeros(backdrop.shape[:2], bool)
    h, w = mask.shape
    region = out[y:y + h, x:x + w]
    region[mask] = rgb[mask]
    where[y:y + h, x:x + w] = mask
    return out, where


def green_backdrop(h: int, w: int, seed: int = 0, noise: float = 5.0) -> np.ndarray:
    """A green screen as a camera sees it: lit unevenly (65-115 %), vignetted, with sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.65 + 0.5 * xx / w
    light *= 1.0 - 0.25 * (((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2)
    img = KEY_RGB[None, None, :] * light[:, :, None] + rng.normal(0, noise, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return float((a & b).sum() / max(1, (a | b).sum()))


CRISP = {"seg/scale": 1.0, "seg/smooth": 0.0, "seg/threshold": 0.5, "seg/feather": 0.0, "seg/grow": 0}


# ---- chroma -------------------------------------------------------------------------------------

def test_chroma_recovers_a_person_on_a_shaded_noisy_green_screen(cutout):
    rgb, mask = cutout
    frame, truth = paste(green_backdrop(600, 800), rgb, mask, 60, 150)
    seg = ChromaSegmenter()
    got = segment_frame(seg, MaskTreatment(), frame, default_values(CRISP, mode="chroma"))
    assert got.shape == truth.shape and got.dtype == np.float32
    assert iou(got > 0.5, truth) >= 0.95


def test_chroma_soft_mask_and_key_colour():
    frame = green_backdrop(120, 160, noise=0)
    seg = ChromaSegmenter()
    assert seg.segment(frame).max() < 0.05  # all backdrop, however lit
    seg.configure({"seg/key_r": 1.0, "seg/key_g": 0.0, "seg/key_b": 0.0})  # key on red instead
    assert seg.segment(frame).min() > 0.95  # now the green is all "person"
    seg.configure(default_values(tolerance=0.0, softness=200.0))
    soft = seg.segment(frame)
    assert 0.0 < soft.mean() < 0.5  # a wide softness gives fractional values, not a cut


# ---- selfie -------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["auto", "square", "landscape"])
def test_selfie_finds_the_astronaut_in_a_wide_frame(selfie, model):
    canvas = np.full((720, 1280, 3), 128, np.uint8)
    y0, x0 = 104, 384
    canvas[y0:y0 + 512, x0:x0 + 512] = skimage.data.astronaut()
    values = default_values(mode="selfie", model=model, threshold=0.0, feather=0.0, smooth=0.0)
    m = segment_frame(selfie, MaskTreatment(), canvas, values)  # at the default seg/scale 0.5
    assert m.shape == (720, 1280)
    torso = m[y0 + 260:y0 + 420, x0 + 80:x0 + 260]
    assert torso.mean() >= 0.6
    for corner in (m[:120, :120], m[:120, -120:], m[-120:, :120], m[-120:, -120:]):
        assert corner.mean() <= 0.15


def test_selfie_auto_picks_the_model_by_aspect(models_dir):
    with SelfieSegmenter(models_dir, "auto") as s:
        assert s.variant_for(1280, 720) == "landscape"
        assert s.variant_for(512, 512) == "square"
        s.configure({"seg/model": "square"})
        assert s.variant_for(1280, 720) == "square"


def test_selfie_missing_model_says_where_it_ships_and_names_no_repository_file(tmp_path):
    with pytest.raises(SegmenterMissingError) as e:
        SelfieSegmenter(tmp_path)
    assert isinstance(e.value, UserError)
    said = str(e.value)
    assert "installation/models/segmenters" in said and "INSTALLATION_SEGMENTERS_DIR" in said
    assert "scripts/" not in said, "a wheel user has no scripts/ folder"
    assert e.value.file is not None and e.value.file.endswith(".tflite")


def test_segmenters_reject_a_picture_that_is_not_rgb_uint8():
    seg = ChromaSegmenter()
    bad_pictures = (np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                    np.zeros((10, 10, 3), np.float32))
    for bad in bad_pictures:
        with pytest.raises(ValueError, match="HxWx3 uint8"):
            seg.segment(bad)


# ---- background ---------------------------------------------------------------------------------

def room(h: int, w: int, rng: np.random.Generator, noise: float = 4.0) -> np.ndarray:
    """A synthetic empty room: a warm-to-cool wall gradient with blotches, plus per-frame sensor noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = np.stack([150 - 60 * xx / w, 120 + 30 * yy / h, 90 + 80 * xx / w], axis=2)
    texture = np.random.default_rng(7).normal(0, 40, (h, w, 3)).astype(np.float32)
    blotches = cv2.GaussianBlur(texture, (0, 0), 12)
    img = wall + blotches + rng.normal(0, noise, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_background_subtraction_finds_the_person_and_relearns(cutout):
    rgb, mask = cutout
    rng = np.random.default_rng(1)
    seg = BackgroundSegmenter()
    values = default_values(CRISP, mode="background", bg_frames=8)
    seg.configure(values)
    treat = MaskTreatment()
    for _ in range(8):
        assert segment_frame(seg, treat, room(600, 800, rng), values).max() == 0.0  # learning: nobody
    assert seg.learned and seg.plate is not None and seg.plate.shape == (600, 800, 3)
    empty = segment_frame(seg, treat, room(600, 800, rng), values)
    assert empty.mean() < 0.005
    frame, truth = paste(room(600, 800, rng), rgb, mask, 60, 150)
    got = segment_frame(seg, treat, frame, values)
    assert iou(got > 0.5, truth) >= 0.9

    seg.relearn()  # the person stays put while the room is learned again: she becomes the room
    assert not seg.learned
    for _ in range(8):
        segment_frame(seg, treat, paste(room(600, 800, rng), rgb, mask, 60, 150)[0], values)
    assert segment_frame(seg, treat, frame, values)[truth].mean() < 0.05


def test_background_relearns_when_the_frame_size_changes():
    rng = np.random.default_rng(2)
    seg = BackgroundSegmenter(frames=2)
    for _ in range(2):
        seg.segment(room(60, 80, rng))
    assert seg.learned
    assert seg.segment(room(90, 120, rng)).shape == (90, 120)
    assert not seg.learned


# ---- mask treatment -----------------------------------------------------------------------------

def disc(h: int = 200, w: int = 200, r: int = 50) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    cv2.circle(m, (w // 2, h // 2), r, 1.0, -1)
    return m


def test_grow_and_shrink_change_the_area_as_a_ring_of_that_width():
    base = disc()
    area = base.sum()
    plain = {"seg/smooth": 0.0, "seg/feather": 0.0, "seg/threshold": 0.5}
    grown = MaskTreatment().apply(base, {**plain, "seg/grow": 5}).sum()
    shrunk = MaskTreatment().apply(base, {**plain, "seg/grow": -5}).sum()
    assert grown > area > shrunk
    ring = 2 * np.pi * 50 * 5
    assert grown - area == pytest.approx(ring, rel=0.15)
    assert area - shrunk == pytest.approx(ring, rel=0.15)
    # sizes are frame pixels: on a half-size mask, grow 10 moves the edge 5 mask pixels
    half = MaskTreatment().apply(base, {**plain, "seg/grow": 10}, px_scale=0.5).sum()
    assert half == grown


def test_threshold_cuts_and_zero_keeps_the_soft_mask():
    ramp = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (4, 1))
    plain = {"seg/smooth": 0.0, "seg/feather": 0.0, "seg/grow": 0}
    cut = MaskTreatment().apply(ramp, {**plain, "seg/threshold": 0.3})
    assert set(np.unique(cut)) == {0.0, 1.0}
    assert np.array_equal(cut[0] == 1.0, ramp[0] >= 0.3)
    soft = MaskTreatment().apply(ramp, {**plain, "seg/threshold": 0.0})
    assert np.allclose(soft, ramp)


def test_feather_softens_only_the_edge():
    values = {"seg/smooth": 0.0, "seg/threshold": 0.5, "seg/grow": 0, "seg/feather": 4.0}
    m = MaskTreatment().apply(disc(), values)
    assert m[100, 100] == pytest.approx(1.0) and m[0, 0] == pytest.approx(0.0)
    edge = m[100, 140:160]
    assert ((edge > 0.05) & (edge < 0.95)).sum() >= 6


def test_smoothing_lags_behind_and_reset_forgets():
    values = {"seg/smooth": 0.75, "seg/threshold": 0.0, "seg/feather": 0.0, "seg/grow": 0}
    t = MaskTreatment()
    zeros, ones = np.zeros((8, 8), np.float32), np.ones((8, 8), np.float32)
    assert t.apply(zeros, values).max() == 0.0
    assert t.apply(ones, values).mean() == pytest.approx(0.25)
    assert t.apply(ones, values).mean() == pytest.approx(0.4375)
    t.reset()
    assert t.apply(ones, values).mean() == pytest.approx(1.0)
    # a mask of another size (seg/scale changed) starts afresh instead of failing
    assert t.apply(np.zeros((4, 4), np.float32), values).shape == (4, 4)


# ---- the worker ---------------------------------------------------------------------------------

def wait_until(cond, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture
def chroma_frame(cutout) -> tuple[np.ndarray, np.ndarray]:
    rgb, mask = cutout
    return paste(green_backdrop(360, 640, seed=3), cv2.resize(rgb, (300, 300)),
                 cv2.resize(mask.astype(np.uint8), (300, 300)) > 0, 40, 170)


def test_worker_delivers_masks_at_the_segmentation_resolution(chroma_frame):
    frame, truth = chroma_frame
    worker = SegmentWorker()
    try:
        values = default_values(mode="chroma", scale=0.5, smooth=0.0)
        assert worker.latest() is None
        assert worker.submit(7, frame, values)
        got = worker.wait_for(7)
        assert got is not None
        mask, index = got
        h, w = frame.shape[:2]
        assert index == 7 and mask.shape == (round(h * 0.5), round(w * 0.5)) and mask.dtype == np.float32
        small_truth = cv2.resize(truth.astype(np.uint8), (mask.shape[1], mask.shape[0]),
                                 interpolation=cv2.INTER_NEAREST).astype(bool)
        assert iou(mask > 0.5, small_truth) >= 0.9
        assert worker.segmented == 1 and worker.failures == 0
    finally:
        worker.close()
    assert not worker.alive


def test_worker_survives_a_failing_frame_and_keeps_the_previous_mask(chroma_frame, caplog):
    frame, _ = chroma_frame
    worker = SegmentWorker()
    values = default_values(mode="chroma")
    try:
        worker.submit(1, frame, values)
        first = worker.wait_for(1)
        assert first is not None
        with caplog.at_level(logging.ERROR, logger="installation.segment"):
            bad = frame[:, :, 0]  # a grey picture: the segmenter refuses it
            for i, n in ((2, 1), (3, 2)):
                worker.submit(i, bad, values)
                assert wait_until(lambda n=n: worker.failures == n)
                assert worker.latest() is first  # the previous mask, untouched
        assert worker.alive
        assert "HxWx3 uint8" in (worker.last_error or "")
        logged = [r for r in caplog.records if r.name == "installation.segment"]
        assert len(logged) == 1  # the same error twice is logged once
        worker.submit(4, frame, values)
        got = worker.wait_for(4)
        assert got is not None and got[1] == 4
    finally:
        worker.close()


def test_worker_with_a_missing_model_counts_failures_then_switches_mode(tmp_path, chroma_frame):
    frame, _ = chroma_frame
    worker = SegmentWorker(models_dir=tmp_path)
    try:
        worker.submit(1, frame, default_values(mode="selfie"))
        assert wait_until(lambda: worker.failures == 1)
        assert "INSTALLATION_SEGMENTERS_DIR" in (worker.last_error or "")
        assert worker.latest() is None and worker.alive
        worker.submit(2, frame, default_values(mode="chroma"))  # switching mode rebuilds the segmenter
        got = worker.wait_for(2)
        assert got is not None and got[1] == 2
        worker.submit(3, frame, default_values(mode="none"))  # no segmenter: no mask
        assert wait_until(lambda: worker.latest() is None)
    finally:
        worker.close()


def test_worker_segments_every_nth_frame_and_relearns(chroma_frame):
    frame, _ = chroma_frame
    worker = SegmentWorker()
    try:
        values = default_values(mode="background", every=3, bg_frames=2)
        taken = []
        for i in range(6):
            taken.append(worker.submit(i, frame, values))
            if taken[-1]:
                worker.wait_for(i)
        assert taken == [True, False, False, True, False, False]
        assert worker.segmented == 2
        worker.relearn()
        worker.submit(6, frame, values)
        got = worker.wait_for(6)
        assert got is not None and got[0].max() == 0.0  # relearning: the plate is empty again
    finally:
        worker.close()


def test_worker_runs_the_real_selfie_model(models_dir, cutout):
    rgb, mask = cutout
    worker = SegmentWorker(models_dir)
    try:
        worker.submit(0, rgb, default_values(mode="selfie", smooth=0.0))
        got = worker.wait_for(0, timeout=20)
        assert got is not None and worker.failures == 0
        full = cv2.resize(got[0], (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
        assert got[0].shape == (mask.shape[0] // 2, mask.shape[1] // 2), "kept at seg/scale 0.5"
        assert iou(full > 0.5, mask) >= 0.85  # half resolution, feathered: close to the full-size cut
    finally:
        worker.close()


def test_make_segmenter_covers_every_mode(models_dir):
    assert make_segmenter("none", models_dir) is None
    classes = {"selfie": SelfieSegmenter, "chroma": ChromaSegmenter, "background": BackgroundSegmenter}
    for mode, cls in classes.items():
        s = make_segmenter(mode, models_dir, default_values())
        assert isinstance(s, cls)
        s.close()
    with pytest.raises(ValueError):
        make_segmenter("rotoscope", models_dir)


# ---- params -------------------------------------------------------------------------------------

def test_params_are_declared_well():
    names = [p.name for p in segment.PARAMS]
    assert len(names) == len(set(names))
    Registry([*preprocess.PARAMS, *segment.PARAMS])  # raises on a name declared twice
    expected = {"seg/mode", "seg/threshold", "seg/feather", "seg/grow", "seg/smooth", "seg/scale",
                "seg/every", "seg/key_r", "seg/key_g", "seg/key_b", "seg/tolerance", "seg/softness",
                "seg/relearn"}
    assert expected <= set(names)
    for p in segment.PARAMS:
        assert p.group == "seg", p.name
        assert p.description and "\n" not in p.description, p.name
        if p.kind == "trigger":
            assert not p.persist
            continue
        assert p.coerce(p.default) == p.default, p.name
        if p.kind in ("float", "int"):
            assert p.lo <= p.default <= p.hi, p.name
    assert segment.P_MODE.choices == ("none", "selfie", "chroma", "background")
    assert segment.P_GROW.kind == "int" and segment.P_GROW.lo < 0 < segment.P_GROW.hi


# ---- the command --------------------------------------------------------------------------------

def _args(input_path: Path, out: Path, mode: str = "chroma", every: int = 1,
          overrides: tuple[str, ...] | list[str] = ()) -> argparse.Namespace:
    return argparse.Namespace(input=str(input_path), out=str(out), mode=mode, every=every,
                              models=segment.DEFAULT_MODELS_DIR, overrides=list(overrides))


def _figure_frame(i: int) -> np.ndarray:
    """A green-screen frame with a drawn figure (head, body, arms) walking to the right."""
    rgb = green_backdrop(120, 160, seed=i, noise=3)
    cx = 50 + 8 * i
    cv2.circle(rgb, (cx, 30), 12, (220, 170, 140), -1)
    cv2.ellipse(rgb, (cx, 75), (16, 30), 0, 0, 360, (200, 60, 40), -1)
    cv2.line(rgb, (cx - 14, 60), (cx - 30, 90), (200, 60, 40), 6)
    cv2.line(rgb, (cx + 14, 60), (cx + 30, 90), (200, 60, 40), 6)
    return rgb


def test_segment_command_on_a_video(tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    assert writer.isOpened()
    for i in range(6):
        writer.write(cv2.cvtColor(_figure_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()

    out = tmp_path / "masks"
    assert segment_cli.cmd_segment(_args(video, out)) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == [f"frame_{i:06d}.png" for i in range(6)]
    m = cv2.imread(str(out / "frame_000003.png"), cv2.IMREAD_UNCHANGED)
    assert m.shape == (120, 160) and m.dtype == np.uint8
    cx = 50 + 8 * 3
    assert m[70:80, cx - 5:cx + 5].mean() > 200  # the body
    assert m[:, :20].mean() < 20 and m[:, -20:].mean() < 20  # the green either side

    every = tmp_path / "every"
    assert segment_cli.cmd_segment(_args(video, every, every=2)) == 0
    assert sorted(p.name for p in every.iterdir()) == [f"frame_{i:06d}.png" for i in (0, 2, 4)]


def test_segment_command_on_an_image_and_a_folder(tmp_path, models_dir):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(_figure_frame(0), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b.jpg"), cv2.cvtColor(_figure_frame(1), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert segment_cli.cmd_segment(_args(folder, out, overrides=["seg/grow=2", "feather=0"])) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert set(np.unique(cv2.imread(str(out / "a.png"), cv2.IMREAD_UNCHANGED))) == {0, 255}  # no feather

    astro = tmp_path / "astronaut.png"
    cv2.imwrite(str(astro), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    assert segment_cli.cmd_segment(_args(astro, out, mode="selfie")) == 0
    m = cv2.imread(str(out / "astronaut.png"), cv2.IMREAD_UNCHANGED)
    assert m.shape == (512, 512) and 0.3 < (m > 127).mean() < 0.8


def test_segment_command_rejects_bad_input(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as e:
        segment_cli.cmd_segment(_args(empty, tmp_path / "o1"))
    assert e.value.file == str(empty) and e.value.exit_code == 2

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(UserError) as e:
        segment_cli.cmd_segment(_args(broken, tmp_path / "o2"))
    assert e.value.file == str(broken)

    for bad in (tmp_path / "broken.mp4", tmp_path / "missing.mp4"):
        if bad.name == "broken.mp4":
            bad.write_bytes(os.urandom(2048))
        with pytest.raises(UserError) as e:
            segment_cli.cmd_segment(_args(bad, tmp_path / "o3"))
        assert e.value.file == str(bad)

    folder = tmp_path / "one"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _figure_frame(0))
    with pytest.raises(UserError, match="--every"):
        segment_cli.cmd_segment(_args(folder, tmp_path / "o4", every=0))
    for override in ("seg/nonsense=1", "seg/threshold", "seg/mode=rotoscope", "seg/mode=none"):
        with pytest.raises(UserError):
            segment_cli.cmd_segment(_args(folder, tmp_path / "o4", overrides=[override]))


def test_segment_command_parses():
    parser = argparse.ArgumentParser(prog="installation")
    sub = parser.add_subparsers(dest="command")
    segment_cli.add_commands(sub)
    args = parser.parse_args(["segment", "in.mp4", "--out", "masks", "--mode", "background", "--every", "3",
                              "--set", "seg/threshold=0.7"])
    assert args.func is segment_cli.cmd_segment
    assert (args.input, args.out, args.mode, args.every, args.overrides) == (
        "in.mp4", "masks", "background", 3, ["seg/threshold=0.7"])
    assert parser.parse_args(["segment", "x", "--out", "y"]).mode == "selfie"
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "x", "--out", "y", "--mode", "none"])
    with pytest.raises(SystemExit):
        parser.parse_args(["segment", "x"])  # --out is required


def test_cli_exit_code_for_an_empty_folder(tmp_path, monkeypatch):
    from installation import cli

    # Only this command: the test shouldn't depend on every other module's commands importing.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("installation.vision.segment_cli",))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["segment", str(empty), "--out", str(tmp_path / "o")]) == 2


# ---- the fetch script ---------------------------------------------------------------------------

def test_fetch_script_checks_the_shipped_files_and_fetches_nothing(tmp_path, models_dir):
    dest = tmp_path / "seg"
    dest.mkdir()
    for name in segment.SELFIE_MODELS.values():
        (dest / name).write_bytes((models_dir / name).read_bytes())
    proc = subprocess.run([sys.executable, str(CHECK), "--dest", str(dest)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.count("sha256 as recorded") == 2, proc.stdout + proc.stderr
    # one file damaged: named, refused, and left as it is (no download without --force)
    (dest / "selfie_segmentation.tflite").write_bytes(b"model")
    proc = subprocess.run([sys.executable, str(CHECK), "--dest", str(dest)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "selfie_segmentation.tflite" in proc.stderr and "--force" in proc.stderr
    assert (dest / "selfie_segmentation.tflite").read_bytes() == b"model"


def test_fetch_script_fails_clearly_when_pip_fails(tmp_path):
    # An index on a closed loopback port: pip fails at once, without leaving the machine.
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
           "PIP_TIMEOUT": "2", "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": os.devnull,
           "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}
    dest = tmp_path / "seg"
    proc = subprocess.run([sys.executable, str(CHECK), "--force", "--dest", str(dest)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "pip could not download mediapipe==0.10.21" in proc.stderr
    assert not any(dest.glob("*.tflite"))
