"""The sample clip, judged by its pictures: a person moving in front of a plain backdrop, looping cleanly.

The clip is made on demand into media/ (setup makes it; the first run here makes it if missing, ~15 s),
so these tests read the very file that rehearsals play."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SELFIE_MODEL = ROOT / "models" / "segmenters" / "selfie_segmentation.tflite"
SCRIPT = ROOT / "scripts" / "make_sample_clip.py"
needs_selfie = pytest.mark.skipif(not SELFIE_MODEL.is_file(),
                                  reason="selfie model not fetched (scripts/fetch_segmenters.py)")


@pytest.fixture(scope="module")
def clip() -> dict:
    """The default clip's properties, every frame as a 160x90 thumbnail, and some frames in full."""
    from installation.media.sample import ensure_sample_clip

    path = ensure_sample_clip()
    cap = cv2.VideoCapture(str(path))
    info = {"path": path, "fps": cap.get(cv2.CAP_PROP_FPS), "size": (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                                                     int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))}
    thumbs, full = [], {}
    while True:
        ok, f = cap.read()
        if not ok:
            break
        if len(thumbs) % 75 == 0:
            full[len(thumbs)] = f
        thumbs.append(cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA).astype(np.float32))
    cap.release()
    info["thumbs"], info["full"] = thumbs, full
    return info


def backdrop_of(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """The median colour of the top row and side columns (the person stands on the bottom edge), and
    the fraction of those pixels within 12 levels of it in every channel."""
    border = np.concatenate([frame[0], frame[:, 0], frame[:, -1]]).astype(np.int16)
    colour = np.median(border, axis=0)
    return colour, float((np.abs(border - colour).max(axis=1) <= 12).mean())


def not_backdrop(frame: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return np.abs(frame.astype(np.int16) - colour).max(axis=2) > 30


@needs_selfie
def test_length_rate_and_size(clip):
    assert clip["size"] == (1280, 720)
    assert clip["fps"] == pytest.approx(30.0)
    seconds = len(clip["thumbs"]) / clip["fps"]
    assert 20.0 <= seconds <= 30.0, seconds


@needs_selfie
def test_it_loops_the_last_frame_flows_into_the_first(clip):
    t = clip["thumbs"]
    step = [float(np.abs(t[i + 1] - t[i]).mean()) for i in range(len(t) - 1)]
    seam = float(np.abs(t[0] - t[-1]).mean())
    quarter = float(np.abs(t[0] - t[len(t) // 4]).mean())
    # the seam is one more ordinary step, not a jump to another pose
    assert seam <= 1.5 * np.percentile(step, 90), (seam, np.percentile(step, 90))
    assert quarter > 4 * seam, (quarter, seam)


@needs_selfie
def test_backdrop_is_plain_and_one_colour(clip):
    colours = []
    for i, f in clip["full"].items():
        colour, share = backdrop_of(f)
        assert share > 0.95, f"frame {i}: only {share:.0%} of the border is the backdrop's colour"
        colours.append(colour)
    assert np.ptp(np.array(colours), axis=0).max() <= 4, colours  # the same colour throughout


@needs_selfie
def test_a_person_is_there_moving_and_cleanly_cut_out(clip):
    """The non-backdrop region is one sizeable body that walks and changes size; the project's selfie
    segmenter, run on the clip, finds the same region (a chunk of the photograph's own background
    would be non-backdrop but not person)."""
    from installation.vision.segment import SelfieSegmenter

    xs, areas = [], []
    with SelfieSegmenter(SELFIE_MODEL.parent) as seg:
        for i, f in clip["full"].items():
            colour, _ = backdrop_of(f)
            body = not_backdrop(f, colour)
            body = cv2.morphologyEx(body.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            n, labels, stats, centroids = cv2.connectedComponentsWithStats(body)
            assert n >= 2, f"frame {i}: nobody there"
            big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            share = stats[big, cv2.CC_STAT_AREA] / body.size
            assert share > 0.08, f"frame {i}: the person covers only {share:.1%} of the frame"
            assert stats[big, cv2.CC_STAT_AREA] > 0.97 * body.sum(), f"frame {i}: pieces apart from the person"
            xs.append(centroids[big][0] / f.shape[1])
            areas.append(share)
            person = seg.segment(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)) > 0.5
            iou = (person & (labels == big)).sum() / (person | (labels == big)).sum()
            assert iou > 0.85, f"frame {i}: the selfie segmenter agrees with the cut-out only {iou:.0%}"
    assert max(xs) - min(xs) > 0.2, xs  # walks across
    assert max(areas) / min(areas) > 1.2, areas  # comes closer and goes back


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_without_the_segmenter_it_fails_clearly(tmp_path):
    out = tmp_path / "clip.mp4"
    r = run_script("--out", out, "--models", tmp_path / "empty")
    assert r.returncode == 1
    assert "selfie segment" in r.stderr and "INSTALLATION_SEGMENTERS_DIR" in r.stderr and "Traceback" not in r.stderr
    assert not list(tmp_path.glob("*.mp4"))


@needs_selfie
def test_the_script_makes_a_clip_of_the_asked_size(tmp_path):
    out = tmp_path / "small.mp4"
    r = run_script("--out", out, "--size", "320x180", "--seconds", "2", "--fps", "10")
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 180)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0) and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
    assert "already there" in run_script("--out", out).stdout
