"""`installation show new`: a show file that fits the model's card, and a clear refusal when it can't."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from installation.app import load_show
from installation.cli import main
from installation.inference.models import ModelCard
from installation.vision.preprocess import Chain
from tests.scenarios.conftest import identity_model


def model_with_chain(folder: Path, spec: object, segment: str | None = None) -> Path:
    identity_model(folder)
    prov = {"made_by": "tests/test_shownew.py", **({"segment": segment} if segment else {})}
    ModelCard(name=folder.name, size=(64, 64), chain=Chain.from_spec(spec, 64), provenance=prov).save(folder)
    return folder


def test_a_silhouette_model_gets_the_person_show(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    model = model_with_chain(tmp_path / "models" / "me", "silhouette_edges", segment="chroma")
    assert main(["show", "new", "me", "--model", str(model)]) == 0
    path = tmp_path / "show_configs" / "me.toml"
    data = tomllib.loads(path.read_text())
    assert data["params"]["seg/mode"] == "chroma" and data["params"]["mix/mode"] == "person"
    assert data["params"]["display/fit"] == "fit"
    assert data["model"]["path"] == "../models/me"  # relative to the show file, as shows read paths
    cfg = load_show("me")  # a bare name finds it, and it validates against every parameter
    assert cfg.model.path == model.resolve() and cfg.source.kind == "camera"
    assert "next: installation check me" in capsys.readouterr().out


def test_a_letterboxed_model_fills_a_wide_screen_and_a_plain_one_needs_no_segmenter(tmp_path: Path) -> None:
    wide = model_with_chain(tmp_path / "wide", [{"step": "flip"}, {"step": "crop", "crop": "fit"},
                                                {"step": "resize"}, {"step": "grey"}])
    out = tmp_path / "shows" / "wide.toml"
    assert main(["show", "new", "wide", "--model", str(wide), "--out", str(out)]) == 0
    params = tomllib.loads(out.read_text())["params"]
    assert params["display/fit"] == "fill" and "seg/mode" not in params and "mix/mode" not in params


def test_a_video_stands_in_for_the_camera(tmp_path: Path) -> None:
    from tests.scenarios.conftest import make_clip

    clip = make_clip(tmp_path / "take.mp4", frames=4)
    model = model_with_chain(tmp_path / "m", "silhouette")
    out = tmp_path / "s.toml"
    assert main(["show", "new", "s", "--model", str(model), "--out", str(out), "--camera", str(clip)]) == 0
    src = tomllib.loads(out.read_text())["source"]
    assert src["kind"] == "video" and Path(src["video"]) == clip.resolve()
    assert tomllib.loads(out.read_text())["params"]["seg/mode"] == "selfie"  # no segmenter on the card: selfie


@pytest.mark.parametrize(("card", "key"), [('schema = 1\n[input]\nsize = "big"\n', "input.size"),
                                           ("schema = 7\n", "schema"),
                                           ("not toml [", "not valid TOML")])
def test_a_card_that_cannot_be_read_names_the_file_and_key(tmp_path: Path, capsys, card: str, key: str) -> None:
    model = identity_model(tmp_path / "broken")
    (model / "model.toml").write_text(card)
    assert main(["show", "new", "x", "--model", str(model), "--out", str(tmp_path / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert str(model / "model.toml") in err and key in err and "Traceback" not in err
    assert not (tmp_path / "x.toml").exists()


def test_no_card_and_no_overwrite(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["show", "new", "x", "--model", str(tmp_path / "empty"), "--out", str(tmp_path / "x.toml")]) == 2
    assert "no model card" in capsys.readouterr().err
    model = model_with_chain(tmp_path / "m", "plain")
    out = tmp_path / "x.toml"
    out.write_text("# someone's show\n")
    assert main(["show", "new", "x", "--model", str(model), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "# someone's show\n"
    assert main(["show", "new", "x", "--model", str(model), "--out", str(out), "--force"]) == 0
