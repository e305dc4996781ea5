"""No import knots: counting every import, those made inside functions included (scripts/import_cycles.py);
the layer contracts themselves are import-linter's (pyproject.toml, run by scripts/test.sh)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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

    behind = {"_show", "inbox", "parts", "surfaces", "hud_lines", "slot", "source", "renderer", "display",
              "outputs", "overrides", "results", "segmenter", "workers", "input"}
    def is_show(node: ast.expr) -> bool:  # show, s, self.show
        return ((isinstance(node, ast.Name) and node.id in ("show", "s"))
                or (isinstance(node, ast.Attribute) and node.attr == "show"))

    found = []
    for path in Path(control.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (node.attr == "_show"
                                                    or (node.attr in behind and is_show(node.value))):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found


# ---- counting type-only imports too (grimp, import-linter's own graph) --------------------------------

def typed_import_graph(package: str) -> dict[str, set[str]]:
    """module -> the package modules it imports, imports under `if TYPE_CHECKING` counted."""
    import grimp

    g = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    return {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}


def test_no_import_knot_counting_type_only_imports() -> None:
    """An import made only for an annotation ties modules too: none may close a circle (the last ones, in
    the show, control and training wings, went with issue 24)."""
    graph = typed_import_graph("installation")
    assert "installation.training.config" in graph  # every wing was read
    assert knots(graph) == [], "an import knot, type-only imports counted"


def test_a_knot_made_only_of_annotations_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "typedknot"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typedknot.b import B\n")
    (pkg / "b.py").write_text("from typedknot import a\n")
    (pkg / "c.py").write_text("from typedknot import b\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = typed_import_graph("typedknot")
    assert knots(graph) == [["typedknot.a", "typedknot.b"]]
    assert knots(import_graph(pkg)) == []  # the run-time graph does not see it


def private_imports(package: Path) -> list[str]:
    """Every `from installation.X import _name` under `package` (a public name aliased to a private one,
    `toml_value as _tv`, is not one: it names nothing private of the other module)."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("installation"):
                found += [f"{path.relative_to(package.parent)}: {node.module}.{a.name}"
                          for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_is_imported_across_modules(tmp_path: Path) -> None:
    assert private_imports(ROOT / "installation") == []
    planted = tmp_path / "installation"
    planted.mkdir()
    (planted / "a.py").write_text("from installation.core.state import _hidden\n")
    assert private_imports(planted) == ["installation/a.py: installation.core.state._hidden"]
