"""No import knots: counting every import, those made inside functions included (scripts/import_cycles.py);
the layer contracts themselves are import-linter's (pyproject.toml, run by scripts/test.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from import_cycles import import_graph, knots  # noqa: E402


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "installation")
    assert len(graph) > 50  # every module was read
    assert knots(graph) == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    pkg = tmp_path / "installation"
    (pkg / "wing").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "wing" / "__init__.py").write_text("")
    (pkg / "wing" / "a.py").write_text("from installation.wing.b import f\n")
    (pkg / "wing" / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from installation.d import x\n")
    (pkg / "d.py").write_text("from installation import c\n")
    graph = import_graph(pkg)
    assert graph["installation.wing.b"] == {"installation.wing.a"}
    assert knots(graph) == [["installation.wing.a", "installation.wing.b"]]  # c <-> d: annotations only
