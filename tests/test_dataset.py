"""The dataset builder and the take recorder, on generated clips and pictures."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import frames_of

from installation.cli import main
from installation.training.dataset import person_box, read_dataset, split_pair
from installation.training.readers import PairReader, TargetReader
from installation.training.record import TakeRecorder, record
from installation.vision.preprocess import Chain

CHROMA_GREEN = (0, 177, 64)  # RGB of the chroma key paint the chroma segmenter keys by default


# ---- fixtures ----------------------------------------------------------------------------------


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def green_screen_frames(n: int = 24, w: int = 160, h: int = 120) -> list[np.ndarray]:
    """A figure (a body and a head, in warm colours) walking left to right over chroma green."""
    frames = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:] = CHROMA_GREEN
        cx = int(30 + (w - 60) * i / (n - 1))
        cv2.ellipse(img, (cx, 78), (16, 34), 0, 0, 360, (200, 90, 60), -1)
        cv2.circle(img, (cx, 32), 12, (230, 180, 150), -1)
        cv2.rectangle(img, (cx - 8, 70), (cx + 8, 90), (40, 40, 160), -1)  # a shirt print: some inner edges
        frames.append(img)
    return frames


def coloured_pictures(folder: Path, n: int, size: tuple[int, int] = (72, 96), seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = np.zeros((*size, 3), np.uint8)
        img[:] = rng.integers(0, 255, 3)
        for _ in range(3):
            colour = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.circle(img, (int(rng.integers(10, size[1] - 10)), int(rng.integers(10, size[0] - 10))),
                       int(rng.integers(6, 20)), colour, -1)
        path = folder / f"p{i:02d}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


# ---- building ----------------------------------------------------------------------------------


def test_green_screen_clip_becomes_aligned_silhouette_pairs(tmp_path, capsys):
    clip = write_video(tmp_path / "walk.mp4", green_screen_frames())
    out = tmp_path / "ds"
    rc = main(["dataset", "build", str(clip), "--out", str(out), "--chain", "silhouette", "--size", "32",
               "--every", "2", "--segment", "chroma", "--val", "0.25"])
    assert rc == 0, capsys.readouterr().err
    info = read_dataset(out)
    assert info.layout == "AB" and info.size == 32
    assert info.chain.to_spec() == Chain.from_spec("silhouette", 32).to_spec()  # the full spec, live steps too
    assert info.meta["segment"] == "chroma" and info.meta["every"] == 2
    train, val = sorted((out / "train").glob("*.png")), sorted((out / "val").glob("*.png"))
    assert info.counts["frames_read"] == 12  # 24 frames, every 2nd
    assert len(train) + len(val) == info.counts["pairs"] == info.split["train"] + info.split["val"] == 12
    assert len(val) == info.split["val"] == 3
    source = frames_of(clip)
    for f in train + val:
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        assert img.shape == (32, 64, 3)
        a, b = split_pair(img, "AB")
        # The input half is the silhouette, the target half the photo, aligned pixel for pixel: where
        # the target shows green backdrop the silhouette is black, where it shows the figure white.
        # (Edges are soft: the mask is feathered, so only pixels a step inside either region count.)
        greenness = b[..., 1].astype(int) - np.maximum(b[..., 0], b[..., 2])
        backdrop = cv2.erode((greenness > 60).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        figure = cv2.erode((greenness < 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert (a[..., 0][backdrop] < 64).mean() > 0.95
        assert (a[..., 0][figure] > 192).mean() > 0.95
        # The whole frame, framed as the live chain frames it (no crop to the person's box).
        n = int(f.stem.rsplit("_", 1)[1])
        whole, _ = Chain.from_spec("plain", 32).apply(cv2.cvtColor(source[n], cv2.COLOR_BGR2RGB))
        assert np.abs(b.astype(int) - whole).max() <= 1


def test_pictures_in_ba_layout_with_edges(tmp_path):
    pics = coloured_pictures(tmp_path / "pics", 5)
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(pics[0].parent), "--out", str(out), "--chain", "edges", "--size", "32",
                 "--layout", "BA", "--val", "0"]) == 0
    info = read_dataset(out)
    assert info.layout == "BA" and info.split == {"val_fraction": 0.0, "seed": 0, "train": 5, "val": 0}
    assert not (out / "val").exists()
    img = cv2.cvtColor(cv2.imread(str(sorted((out / "train").glob("*.png"))[0])), cv2.COLOR_BGR2RGB)
    left, right = img[:, :32], img[:, 32:]
    # BA: target (colour) left, the edge input (white lines on black, three equal channels) right
    assert np.array_equal(right[..., 0], right[..., 1]) and set(np.unique(right)) <= {0, 255}
    assert not np.array_equal(left[..., 0], left[..., 1])
    a, b = PairReader(info, "train", augment=False).pair(0)
    assert np.array_equal(a, right) and np.array_equal(b, left)


def test_near_duplicates_are_skipped(tmp_path):
    src = coloured_pictures(tmp_path / "src", 2, seed=7)
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(1)
    # in name order: X, X', X'', Y, Y' where ' is a little sensor noise
    for name, path in (("a", src[0]), ("b", src[0]), ("c", src[0]), ("d", src[1]), ("e", src[1])):
        img = cv2.imread(str(path)).astype(int)
        if name in "bce":
            img += rng.integers(-2, 3, img.shape)
        cv2.imwrite(str(folder / f"{name}.png"), np.clip(img, 0, 255).astype(np.uint8))
    assert main(["dataset", "build", str(folder), "--out", str(tmp_path / "ds"), "--size", "32", "--val", "0"]) == 0
    info = read_dataset(tmp_path / "ds")
    assert info.counts == {"frames_read": 5, "duplicates_skipped": 3, "no_person_skipped": 0, "pairs": 2}
    assert sorted(p.name for p in (tmp_path / "ds" / "train").iterdir()) == ["00_pics_000000.png",
                                                                             "00_pics_000003.png"]


def test_person_box_is_square_padded_and_inside():
    mask = np.zeros((100, 200), np.float32)
    mask[20:80, 90:110] = 1
    y0, x0, y1, x1 = person_box(mask, pad=0.1)
    assert y1 - y0 == x1 - x0 == 72  # 60 tall, 10% each side
    assert y0 >= 0 and y1 <= 100 and x0 >= 0 and x1 <= 200
    assert person_box(np.zeros((100, 200), np.float32)) is None


def test_target_reader_makes_inputs_with_the_chain(tmp_path):
    coloured_pictures(tmp_path / "t", 3, size=(80, 120))
    chain = Chain.from_spec("grey_blur_downscale", 32)
    r = TargetReader(tmp_path / "t", chain, augment=True, seed=1, repeat=2)
    assert len(r) == 6
    a, b = r.pair(4)
    assert a.shape == b.shape == (32, 32, 3)
    assert np.array_equal(a[..., 0], a[..., 2])  # grey input
    r.set_epoch(1)
    a2, _ = r.pair(4)
    assert not np.array_equal(a, a2)  # a new crop each epoch
    r.set_epoch(0)
    assert np.array_equal(r.pair(4)[0], a)  # ... and the same one again for the same epoch


# ---- bad input ---------------------------------------------------------------------------------


def test_corrupt_video_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["dataset", "build", str(bad), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "video" in err


def test_corrupt_image_is_a_user_error(tmp_path, capsys):
    folder = tmp_path / "pics"
    coloured_pictures(folder, 2)
    (folder / "p01.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["dataset", "build", str(folder), "--out", str(tmp_path / "ds"), "--size", "32"]) == 2
    assert "p01.png" in capsys.readouterr().err


def test_empty_folder_is_a_user_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["dataset", "build", str(tmp_path / "empty"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "no images or videos" in err


def test_folders_of_takes_are_searched_with_their_subfolders(tmp_path, capfd):
    takes = tmp_path / "takes"
    (takes / "anna").mkdir(parents=True)
    (takes / "bob" / "stills").mkdir(parents=True)
    frames = green_screen_frames(8)
    write_video(takes / "anna" / "take_001.mp4", frames[:4])
    write_video(takes / "bob" / "take_001.mp4", frames[4:])
    (takes / "bob" / "take_002.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 broken")
    for i in (0, 7):
        cv2.imwrite(str(takes / "bob" / "stills" / f"s{i}.png"), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(takes), "--out", str(out), "--size", "32", "--val", "0"]) == 0
    captured = capfd.readouterr()
    assert "3 videos and 2 pictures in 3 folders" in captured.out
    assert "skipped" in captured.err and "take_002.mp4" in captured.err  # the broken take, by name
    assert "only 10 pairs; training wants at least 16" in captured.err
    info = read_dataset(out)
    assert info.meta["sources"] == [str(takes / "anna" / "take_001.mp4"), str(takes / "bob" / "stills"),
                                    str(takes / "bob" / "take_001.mp4"), str(takes / "bob" / "take_002.mp4")]
    assert info.meta["skipped"] == [str(takes / "bob" / "take_002.mp4")]
    names = sorted(p.name for p in (out / "train").iterdir())
    assert names[0] == "00_anna_take_001_000000.png" and names[-1] == "02_bob_take_001_000003.png"
    assert sum(n.startswith("01_bob_stills_") for n in names) == 2


def test_empty_folder_of_folders_says_subfolders_were_searched(tmp_path, capsys):
    (tmp_path / "takes" / "anna").mkdir(parents=True)
    (tmp_path / "takes" / "anna" / "notes.txt").write_text("no footage")
    assert main(["dataset", "build", str(tmp_path / "takes"), "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err
    assert "no images or videos in this folder or its 1 subfolder(s)" in err and "takes" in err


def test_crop_fit_frames_the_whole_camera_picture(tmp_path):
    clip = write_video(tmp_path / "walk.mp4", green_screen_frames(4, w=160, h=90))
    out = tmp_path / "ds"
    assert main(["dataset", "build", str(clip), "--out", str(out), "--size", "32", "--val", "0", "--chain",
                 "plain", "--crop", "fit"]) == 0
    info = read_dataset(out)
    assert {"step": "crop", "crop": "fit"} in info.chain.to_spec()
    _, b = split_pair(cv2.imread(str(sorted((out / "train").iterdir())[0])), "AB")
    assert b[:6].max() == 0 and b[-6:].max() == 0 and b[10:22].mean() > 50  # letterbox bars, picture between


def test_mask_chain_without_segmenter_is_a_user_error(tmp_path, capsys):
    coloured_pictures(tmp_path / "p", 1)
    assert main(["dataset", "build", str(tmp_path / "p"), "--out", str(tmp_path / "ds"),
                 "--chain", "silhouette"]) == 2
    assert "--segment" in capsys.readouterr().err


def test_mismatched_pair_size_is_a_user_error(tmp_path, capsys):
    coloured_pictures(tmp_path / "p", 3)
    ds = tmp_path / "ds"
    assert main(["dataset", "build", str(tmp_path / "p"), "--out", str(ds), "--size", "32", "--val", "0"]) == 0
    odd = sorted((ds / "train").glob("*.png"))[1]
    cv2.imwrite(str(odd), np.zeros((32, 48, 3), np.uint8))
    assert main(["train", str(ds), "--out", str(tmp_path / "run"), "--epochs", "1", "--width", "4"]) == 2
    err = capsys.readouterr().err
    assert odd.name in err and "64x32" in err


# ---- recording ---------------------------------------------------------------------------------


def numbered_frames(n: int, w: int = 96, h: int = 48) -> list[np.ndarray]:
    """Frame i is black with a white bar at x = 3i .. 3i+2, so a decoded frame tells which one it was
    (a position survives the codec; a grey level would shift)."""
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:, 3 * i:3 * i + 3] = 255
        frames.append(f)
    return frames


def decoded_indices(path: Path) -> list[int]:
    return [int(np.argmax(f.mean(axis=(0, 2)))) // 3 for f in frames_of(path)]


def test_record_counts_down_then_records_each_take(tmp_path, capsys):
    clip = write_video(tmp_path / "camera.mp4", numbered_frames(30), fps=10)
    out = tmp_path / "takes"
    rc = main(["dataset", "record", "--camera", str(clip), "--out", str(out), "--takes", "2", "--seconds", "0.5",
               "--countdown", "0.5", "--no-preview"])
    assert rc == 0, capsys.readouterr().err
    takes = sorted(out.glob("take_*.mp4"))
    assert [t.name for t in takes] == ["take_001.mp4", "take_002.mp4"]
    # A file standing in for the camera waits during the countdown (wall time): frames 0-4 are take 1,
    # 5-9 take 2 (the frame that ended take 1 opens take 2), none is used up by a countdown.
    assert decoded_indices(takes[0]) == [0, 1, 2, 3, 4]
    assert decoded_indices(takes[1]) == [5, 6, 7, 8, 9]
    # and the takes feed the builder
    assert main(["dataset", "build", str(out), "--out", str(tmp_path / "ds"), "--size", "32", "--val", "0"]) == 0
    assert read_dataset(tmp_path / "ds").counts["frames_read"] == 10


def test_record_into_a_folder_with_takes_goes_on_numbering(tmp_path, capfd):
    clip = write_video(tmp_path / "camera.mp4", numbered_frames(30), fps=10)
    out = tmp_path / "takes"
    args = ["dataset", "record", "--camera", str(clip), "--out", str(out), "--takes", "2", "--seconds", "0.5",
            "--countdown", "0", "--no-preview"]
    assert main(args) == 0
    first = {t.name: t.read_bytes() for t in out.glob("take_*.mp4")}
    (out / "take_005.mp4").write_bytes(first["take_001.mp4"])  # a gap: numbering goes on after the last one
    assert main([*args[:-5], "--takes", "1", "--seconds", "1.0", "--countdown", "0", "--no-preview"]) == 0
    captured = capfd.readouterr()
    assert sorted(t.name for t in out.glob("take_*.mp4")) == ["take_001.mp4", "take_002.mp4", "take_005.mp4",
                                                              "take_006.mp4"]
    assert {n: (out / n).read_bytes() for n in first} == first  # never overwritten
    assert decoded_indices(out / "take_006.mp4") == list(range(10))
    assert "going on from take_006.mp4" in captured.out
    assert "\r" not in captured.err  # not a terminal: plain lines, no progress bar


def test_record_without_a_camera_says_why_once(tmp_path, capfd):
    rc = main(["dataset", "record", "--camera", "7", "--out", str(tmp_path / "t"), "--no-preview"])
    err = capfd.readouterr().err
    assert rc == 2
    assert "no camera at 7" in err and err.count("no camera") == 1, err
    assert "can't open camera by index" not in err  # OpenCV's own warnings are ours now, said once
    assert not (tmp_path / "t").exists() or not list((tmp_path / "t").iterdir())


def test_record_keeps_a_take_cut_short_by_the_end_of_the_source(tmp_path):
    clip = write_video(tmp_path / "short.mp4", numbered_frames(8), fps=10)
    takes = record(str(clip), tmp_path / "takes", takes=3, seconds=1.0, countdown=0.2)
    assert len(takes) == 1 and takes[0].frames == 8  # frames 0..7 (the countdown waits), then the file ended


def test_recorder_shows_the_countdown():
    from installation.core.frames import Frame

    rec = TakeRecorder(Path("/nonexistent"), takes=1, seconds=1.0, countdown=3.0)
    shown = [rec.feed(Frame(np.zeros((4, 4, 3), np.uint8), i, 0.0, source_pts=t)) for i, t in
             enumerate((0.0, 0.5, 1.2, 2.5))]
    assert shown == ["3", "3", "2", "1"]
    assert rec.phase == "countdown" and not rec.written


def test_unreadable_recording_source_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "cam.mp4"
    bad.write_bytes(b"nothing here")
    assert main(["dataset", "record", "--camera", str(bad), "--out", str(tmp_path / "t"), "--no-preview"]) == 2
    assert "cam.mp4" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["AB", "BA"])
def test_pair_reader_jitter_keeps_halves_aligned(tmp_path, layout):
    coloured_pictures(tmp_path / "p", 2)
    assert main(["dataset", "build", str(tmp_path / "p"), "--out", str(tmp_path / "ds"), "--size", "32",
                 "--chain", "plain", "--layout", layout, "--val", "0"]) == 0
    r = PairReader(read_dataset(tmp_path / "ds"), "train", augment=True, seed=3)
    for epoch in range(3):
        r.set_epoch(epoch)
        a, b = r.pair(1)
        assert np.array_equal(a, b)  # the plain chain's input is the target itself: the jitter must match


SELFIE_MODEL = Path(__file__).resolve().parent.parent / "models" / "segmenters" / "selfie_segmentation.tflite"


@pytest.mark.skipif(not SELFIE_MODEL.is_file(), reason="selfie model not fetched (scripts/fetch_segmenters.py)")
def test_selfie_segmenter_finds_the_person_and_skips_the_rest(tmp_path):
    import skimage.data

    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("astronaut", "rocket"):  # a person; a launch pad with nobody on it
        cv2.imwrite(str(pics / f"{name}.png"), cv2.cvtColor(getattr(skimage.data, name)(), cv2.COLOR_RGB2BGR))
    assert main(["dataset", "build", str(pics), "--out", str(tmp_path / "ds"), "--segment", "selfie",
                 "--chain", "silhouette", "--size", "64", "--val", "0"]) == 0
    info = read_dataset(tmp_path / "ds")
    assert info.counts["pairs"] == 1 and info.counts["no_person_skipped"] == 1
    a, _ = split_pair(cv2.imread(str(next((tmp_path / "ds" / "train").iterdir()))), "AB")
    assert 0.2 < (a[..., 0] > 127).mean() < 0.9  # the astronaut fills much of the (square) picture
