"""training/config.py: TrainConfig and the command line read into it, without torch."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from installation.core.errors import UserError
from installation.training.config import RECIPES, TrainConfig, chain_spec, train_config
from installation.training.train_cli import add_train_arguments

ROOT = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    return p.parse_args(list(argv))


@pytest.mark.parametrize("module", ["installation.training.config", "installation.training.cli",
                                    "installation.training.train_cli", "installation.training.rundata"])
def test_the_config_and_the_commands_import_no_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules, 'installation.training.config' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    # rundata opens the data for the trainer and is torch's by nature: the check that the test can fail
    expected = "True True" if module.endswith("rundata") else "False True"
    assert out.stdout.split() == expected.split()


def test_the_arguments_make_a_config_a_recipe_first_then_set_then_the_flags(tmp_path: Path) -> None:
    args = parse("pics", "--out", str(tmp_path / "run"), "--recipe", "texture", "--set", "l1_weight=3",
                 "--set", "d-blur=yes", "--epochs", "7", "--from-targets", "--chain", "edges", "--no-progress")
    cfg = train_config(args)
    assert isinstance(cfg, TrainConfig)
    assert cfg.recipe == "texture" and cfg.norm == RECIPES["texture"]["norm"]
    assert cfg.l1_weight == 3.0 and cfg.d_blur is True  # --set after the recipe, "-" read as "_"
    assert (cfg.epochs, cfg.from_targets, cfg.chain, cfg.progress) == (7, True, "edges", False)
    assert (cfg.dataset, cfg.out) == ("pics", str(tmp_path / "run"))
    assert TrainConfig().l1_weight == 100.0 and TrainConfig().recipe == ""  # the recipe changed a copy only


def test_a_resumed_config_keeps_what_the_checkpoint_says_and_takes_new_keys_at_their_default() -> None:
    saved = dataclasses.asdict(TrainConfig(width=16, epochs=10, chain="edges"))
    del saved["d_blur"]  # a run older than the field
    saved["retired"] = 1  # a field since removed
    cfg = train_config(parse("--resume", "latest.pt", "--epochs", "40"), TrainConfig.from_dict(saved))
    assert (cfg.width, cfg.epochs, cfg.chain, cfg.d_blur) == (16, 40, "edges", False)


@pytest.mark.parametrize("item, said", [("nonsense=1", "KEY=VALUE with KEY one of dataset"),
                                        ("epochs=many", "not a int"), ("amp=perhaps", "not a bool"),
                                        ("lr", "KEY=VALUE")])
def test_a_bad_set_is_a_user_error_naming_it(item: str, said: str) -> None:
    with pytest.raises(UserError) as e:
        train_config(parse("pics", "--set", item))
    assert said in str(e.value)


def test_a_chain_file_gives_its_preprocess_steps(tmp_path: Path) -> None:
    good = tmp_path / "chain.toml"
    good.write_text('[[preprocess]]\nstep = "grey"\n')
    assert chain_spec(parse("--chain-file", str(good))) == [{"step": "grey"}]
    bad = tmp_path / "empty.toml"
    bad.write_text("title = 'no steps'\n")
    with pytest.raises(UserError, match="no \\[\\[preprocess\\]\\] steps"):
        chain_spec(parse("--chain-file", str(bad)))
    with pytest.raises(SystemExit):  # one of the two, as everywhere the chain is asked for
        parse("--chain", "edges", "--chain-file", str(good))
