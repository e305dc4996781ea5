"""docs/workshop.md says what the code does: its parameter table is the networks' own count, and every
`installation ...` command it shows is one the command line accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from installation.cli import build_parser
from installation.training.networks import count_parameters, define_G

DOC = Path(__file__).resolve().parent.parent / "docs" / "workshop.md"
ROW = re.compile(r"^\| (\d+)(?: \(pix2pix\))? \| ([\d.]+) M \| ([\d.]+) M \|", re.M)


def test_the_parameter_table_is_the_code_s_count() -> None:
    rows = ROW.findall(DOC.read_text())
    assert [int(w) for w, _, _ in rows] == [8, 12, 16, 32, 64]
    for width, bilinear, transpose in rows:
        for said, upsample in ((bilinear, "bilinear"), (transpose, "transpose")):
            G = define_G(kind="unet", in_channels=3, out_channels=3, width=int(width), depth=8, norm="batch",
                         dropout=True, upsample=upsample)
            assert said == f"{count_parameters(G) / 1e6:.2f}", (width, upsample)


def doc_commands() -> list[str]:
    """Every `installation ...` command in the doc's sh blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("#", 1)[0].split("&&"):
                words = shlex.split(part)
                while words and "=" in words[0]:  # OMP_NUM_THREADS=1 installation ...
                    words.pop(0)
                if words[:1] == ["installation"]:
                    commands.append(shlex.join(words[1:]))
    return commands


@pytest.mark.parametrize("command", doc_commands())
def test_the_doc_s_commands_parse(command: str) -> None:
    args, unknown = build_parser().parse_known_args(shlex.split(command))
    assert not unknown, f"installation {command}: unknown {unknown}"
    assert getattr(args, "func", None) is not None
