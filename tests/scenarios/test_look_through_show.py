"""scripts/look_through_show.py, the issue's own reading of a look: the held-back photographs played through
`installation rehearse --record`, the recording's content box measured. A flat model reads no detail, a
model that passes the picture through reads the photograph's, softened by the show's scaling; nothing here
is a figure of this CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2

from tests.scenarios.conftest import flat_model, identity_model

ROOT = Path(__file__).resolve().parents[2]


def read(look: Path, tmp_path: Path, *args: str) -> tuple[dict, Path]:
    stills = tmp_path / f"{look.name}{args[0] if args else ''}.png"  # one file per option the test reads with
    r = subprocess.run([sys.executable, "scripts/look_through_show.py", str(look), "--json", "--stills", str(stills),
                        *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1]), stills


def test_a_flat_look_reads_no_detail_and_a_see_through_look_reads_the_photographs(tmp_path: Path) -> None:
    flat, stills = read(flat_model(tmp_path / "flat", (40, 160, 90), size=256), tmp_path)
    through, _ = read(identity_model(tmp_path / "through", size=256), tmp_path)
    for name in ("grace_hopper", "camera", "motorcycle_left"):
        assert flat[name]["detail"] < 2.0, flat
        assert through[name]["detail"] > 20 * max(flat[name]["detail"], 1.0), (name, through)
        assert flat[name]["flicker"] < 1.0 and through[name]["flicker"] < 1.0, "a still picture, settled"
    picture = cv2.imread(str(stills))
    assert picture.shape == (3 * 256, 2 * 256, 3), "each photograph beside what the show showed"
    # the recorded content is the model's colour, not the letterbox bars
    shown = picture[:256, 256:].reshape(-1, 3).mean(axis=0)[::-1]
    assert abs(shown - (40, 160, 90)).max() < 4.0  # the mp4 moves it a little


def test_the_shows_sharp_upscale_keeps_detail_its_smooth_one_loses(tmp_path: Path) -> None:
    """display/upscale through the real show: a model that passes the picture through, read with the show's
    default ("sharp", a cubic) and with "smooth" (a linear lookup), from a show file's [params]. The sharp
    one keeps more of every photograph's detail and adds no ripple; with --photos the stills end with a row
    of the set's own photographs and the share is read against their median."""
    import numpy as np

    photos = tmp_path / "set"
    photos.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):  # a set of three textured "photographs", grain at a few scales
        grain = cv2.resize(rng.integers(0, 256, (64 * (i + 1), 64 * (i + 1), 3), dtype=np.uint8), (400, 300))
        cv2.imwrite(str(photos / f"p{i}.png"), grain)
    look = identity_model(tmp_path / "through", size=256)
    sharp, stills = read(look, tmp_path, "--photos", str(photos))
    smooth, _ = read(look, tmp_path, "--upscale", "smooth")
    assert (sharp["upscale"], smooth["upscale"]) == ("sharp", "smooth")
    for name in ("grace_hopper", "camera", "motorcycle_left"):
        assert sharp[name]["detail"] > 1.15 * smooth[name]["detail"], (name, sharp, smooth)
        assert sharp[name]["spike"] <= max(10.0, 1.5 * smooth[name]["spike"]), (name, sharp, smooth)
    assert 0 < sharp["share"] == round(sharp["grace_hopper"]["detail"] / sharp["photographs_median"], 3)
    picture = cv2.imread(str(stills))
    assert picture.shape == (4 * 256, 2 * 256, 3), "three photographs beside what was shown, then the set's row"
    assert picture[3 * 256:].std() > 30, "the set's photographs, not a blank row"
