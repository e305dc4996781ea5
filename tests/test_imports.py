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


def test_control_surfaces_reach_the_show_only_through_its_handle() -> None:
    """The narrow handle (show/handle.py) is what a surface gets; none reaches behind it to the Show, nor
    into the show's own parts or its loop's state by name."""
    import ast

    import installation.control as control

    behind = {"_show", "inbox", "controls", "surfaces", "hud_lines", "slot", "source", "renderer", "display",
              "outputs", "overrides", "results", "segmenter"}
    def is_show(node: ast.expr) -> bool:  # show, s, self.show
        return ((isinstance(node, ast.Name) and node.id in ("show", "s"))
                or (isinstance(node, ast.Attribute) and node.attr == "show"))

    found = []
    for path in Path(control.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (node.attr == "_show"
                                                    or (node.attr in behind and is_show(node.value))):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found
