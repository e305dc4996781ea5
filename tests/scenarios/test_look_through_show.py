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


def read(look: Path, tmp_path: Path) -> tuple[dict, Path]:
    stills = tmp_path / f"{look.name}.png"
    r = subprocess.run([sys.executable, "scripts/look_through_show.py", str(look), "--json", "--stills", str(stills)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
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
