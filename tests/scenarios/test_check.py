"""`installation check` on shows that cannot work: each problem is named (file, key, why), all of them are
listed, and the command exits 1 ("will not work as configured"); 2 stays for files that are invalid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SYNTHETIC, small_show, xvfb
from tests.scenarios.conftest import INSTALLATION, cli_env, flat_model

CAMERA_7 = 'kind = "camera"\ncamera = 7\nwidth = 160\nheight = 90'


def check(tmp_path: Path, show: Path, env: dict[str, str] | None = None,
          *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INSTALLATION, "check", str(show), *flags], capture_output=True, text=True, timeout=120,
                          env={**cli_env(tmp_path), **(env or {})}, cwd=tmp_path)


def said(res: subprocess.CompletedProcess[str]) -> str:
    return res.stdout + res.stderr


def assert_clean(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in said(res), said(res)


def problems(res: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in said(res).splitlines() if ln.startswith("problem:")]


def test_a_camera_that_is_not_there(tmp_path: Path) -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    res = check(tmp_path, small_show(tmp_path, source=CAMERA_7))
    assert res.returncode == 1, said(res)
    assert_clean(res)
    (line,) = problems(res)
    assert "source.camera" in line and "camera 7" in line and "show.toml" in line
    assert "\nok\n" not in res.stdout


def test_a_camera_path_that_is_not_there(tmp_path: Path) -> None:
    res = check(tmp_path, small_show(tmp_path, source='kind = "camera"\ncamera = "/dev/v4l/by-id/usb-nothing"'))
    assert res.returncode == 1, said(res)
    assert "/dev/v4l/by-id/usb-nothing" in problems(res)[0]


def test_selfie_models_never_fetched(tmp_path: Path) -> None:
    model = flat_model(tmp_path / "models" / "red", (255, 0, 0), chain="silhouette")
    show = small_show(tmp_path, model=model, tail='[params]\n"seg/mode" = "selfie"')
    empty = tmp_path / "no-segmenters"
    empty.mkdir()
    res = check(tmp_path, show, {"INSTALLATION_SEGMENTERS_DIR": str(empty)})
    assert res.returncode == 1, said(res)
    assert_clean(res)
    (line,) = problems(res)
    assert "seg/mode" in line and "selfie_segmentation" in line and "INSTALLATION_SEGMENTERS_DIR" in line
    # the same show where the models were fetched (this repository's copy) works
    res = check(tmp_path, show)
    assert res.returncode == 0, said(res)
    assert problems(res) == [] and res.stdout.rstrip().endswith("ok")


def test_a_screen_out_of_range_without_a_screen_is_only_noted(tmp_path: Path) -> None:
    show = small_show(tmp_path)
    show.write_text(show.read_text().replace("[render]", "[render]\nscreen = 3"))
    res = check(tmp_path, show)
    assert res.returncode == 0, said(res)
    assert "render.screen" in res.stdout and "3" in res.stdout and "no screen" in res.stdout


@pytest.mark.skipif(not shutil.which("Xvfb"), reason="needs Xvfb")
def test_a_screen_out_of_range(tmp_path: Path) -> None:
    with xvfb() as display:
        show = tmp_path / "screens.toml"
        show.write_text(small_show(tmp_path).read_text().replace("[render]", "[render]\nscreen = 2"))
        res = check(tmp_path, show, {"DISPLAY": display})
        assert res.returncode == 1, said(res)
        (line,) = problems(res)
        assert "render.screen" in line and "2" in line and "800x600" in line
        ok = check(tmp_path, small_show(tmp_path), {"DISPLAY": display})  # screen 0 is there
        assert ok.returncode == 0, said(ok)


def test_a_misspelled_provider(tmp_path: Path) -> None:
    model = flat_model(tmp_path / "models" / "red", (255, 0, 0))
    show = small_show(tmp_path, model=model)
    bad = tmp_path / "bad.toml"
    bad.write_text(show.read_text().replace("[model]", '[model]\nproviders = ["cdua", "cpu"]'))
    res = check(tmp_path, bad)
    assert res.returncode == 1, said(res)
    assert_clean(res)
    (line,) = problems(res)
    assert "model.providers" in line and "'cdua'" in line and "cuda" in line  # and what it may be instead
    good = tmp_path / "good.toml"
    good.write_text(show.read_text().replace("[model]", '[model]\nproviders = ["cpu"]'))
    assert check(tmp_path, good).returncode == 0


def test_a_chain_that_needs_the_mask_without_segmentation(tmp_path: Path) -> None:
    model = flat_model(tmp_path / "models" / "sil", (255, 0, 0), chain="silhouette")
    res = check(tmp_path, small_show(tmp_path, model=model))
    assert res.returncode == 1, said(res)
    assert_clean(res)
    (line,) = problems(res)
    assert "mask" in line and "seg/mode" in line and "none" in line
    keyed = small_show(tmp_path, model=model, tail='[params]\n"seg/mode" = "chroma"', file="keyed.toml")
    assert check(tmp_path, keyed).returncode == 0


def test_every_problem_is_listed_before_exiting(tmp_path: Path) -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    model = flat_model(tmp_path / "models" / "sil", (255, 0, 0), chain="silhouette")
    show = small_show(tmp_path, source=CAMERA_7, model=model)
    show.write_text(show.read_text().replace("[model]", '[model]\nproviders = "tensorrtt"'))
    res = check(tmp_path, show)
    assert res.returncode == 1, said(res)
    found = problems(res)
    assert len(found) == 3, said(res)
    assert any("source.camera" in p for p in found) and any("model.providers" in p for p in found)
    assert any("seg/mode" in p for p in found)
    assert "3 problems" in res.stderr


def test_an_invalid_file_still_exits_2(tmp_path: Path) -> None:
    show = small_show(tmp_path, source=SYNTHETIC + "\nfps = -1")
    res = check(tmp_path, show)
    assert res.returncode == 2 and "source.fps" in res.stderr
    assert_clean(res)


def test_a_restored_segmentation_mode_is_judged_too(tmp_path: Path) -> None:
    """seg/mode tuned live to "none" and saved: the next start would feed the mask step solid white."""
    model = flat_model(tmp_path / "models" / "sil", (255, 0, 0), chain="silhouette")
    show = small_show(tmp_path, name="restored", model=model, tail='[params]\n"seg/mode" = "chroma"')
    live = tmp_path / "state-root" / "restored" / "live.json"
    live.parent.mkdir(parents=True)
    live.write_text('{"version": 1, "values": {"seg/mode": "none"}}')
    res = check(tmp_path, show)
    assert res.returncode == 1, said(res)
    (line,) = problems(res)
    assert "seg/mode" in line and "restored from the state folder" in line
    assert "seg/mode = 'none' (show file: 'chroma')" in res.stdout
