"""Shader programs: built from shaders/*.vert + *.frag (a folder of one's own through
$INSTALLATION_SHADER_DIR), reloaded when a file changes, a program that fails to compile on reload
leaving the last good one in use and its compiler message for the HUD. Main thread only, as all GL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from installation.core.errors import UserError
from installation.core.paths import data_dir

log = logging.getLogger("installation.render")

SHADER_DIR = data_dir("shaders")
INCLUDE = re.compile(r'#include\s+"([^"/\\]+)"')  # a file of the same folder
SHADER_DIR_ENV = "INSTALLATION_SHADER_DIR"  # another folder of shaders: a look of one's own, or a test's copy


def shader_dir() -> Path:
    """Where the programs come from: $INSTALLATION_SHADER_DIR when set, else the repository's shaders/."""
    return Path(os.environ.get(SHADER_DIR_ENV) or SHADER_DIR)


def composite_program(sharp: bool) -> str:
    """The composite program's name: the model's pictures enlarged with a cubic (SHARP 1) or linearly."""
    return "composite" + ("_sharp" if sharp else "")


def present_program(mixed: bool, graded: bool, sharp: bool = False) -> str:
    """The present program's name: mixing the layers itself (MIX 1) or showing a content texture, with
    or without the colour grade, enlarging the model's picture with a cubic (SHARP 1) or a linear lookup."""
    return "present" + ("_mix" if mixed else "") + ("_graded" if graded else "") + ("_sharp" if sharp else "")


class ShaderSet:
    """Programs built from shaders/*.vert + *.frag; reloaded when a file changes.

    A program that fails to compile on reload leaves the last good one in use, and its compiler
    message in `errors` for the HUD. At start a broken program is an error (nothing to fall back on).
    """

    def __init__(self, ctx: Any, directory: Path | None = None,
                 programs: dict[str, tuple[str, str]] | None = None) -> None:
        self.ctx = ctx
        self.dir = Path(directory) if directory is not None else shader_dir()
        # (vertex, fragment[, #defines]). Mixing the layers and the colour grade are programs of their
        # own, not uniform branches: llvmpipe runs every side of a branch, so a switched-off path would
        # still cost its texture reads (the old monitor branch doubled the present pass on a 2-core CPU).
        self.specs: dict[str, tuple[Any, ...]] = programs or {
            **{composite_program(sharp): ("quad.vert", "composite.frag", {"SHARP": int(sharp)})
               for sharp in (False, True)},
            **{present_program(mixed, graded, sharp): ("quad.vert", "present.frag",
                                                       {"MIX": int(mixed), "GRADE": int(graded), "SHARP": int(sharp)})
               for mixed in (False, True) for graded in (False, True) for sharp in (False, True)},
            "hud": ("quad.vert", "hud.frag")}
        self.programs: dict[str, Any] = {}
        self.vaos: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.reloads = 0
        self._mtimes: dict[str, float] = {}
        self._included: dict[str, list[Path]] = {}  # a program's #include'd files, watched like its own
        for name in self.specs:
            self._build(name, initial=True)

    def _files(self, name: str) -> list[Path]:
        return [self.dir / f for f in self.specs[name][:2]] + self._included.get(name, [])

    def _expand(self, name: str, frag: str) -> str:
        """`#include "file"` lines replaced by that file of the folder (GLSL has no includes of its own), a
        #line after each so the compiler's line numbers stay the fragment file's."""
        included: list[Path] = []
        out = []
        for n, line in enumerate(frag.split("\n"), 1):
            m = INCLUDE.fullmatch(line.strip())
            if m is None:
                out.append(line)
                continue
            f = self.dir / m.group(1)
            included.append(f)
            out += [f.read_text(), f"#line {n + 1}"]
        self._included[name] = included
        return "\n".join(out)

    def _defines(self, name: str, frag: str) -> str:
        spec = self.specs[name]
        if len(spec) < 3 or not spec[2]:
            return frag
        first, _, rest = frag.partition("\n")  # #version must stay the first line
        defines = "".join(f"#define {k} {v}\n" for k, v in spec[2].items())
        return f"{first}\n{defines}#line 2\n{rest}"

    def _build(self, name: str, initial: bool = False) -> bool:
        try:
            vert, frag = (f.read_text() for f in self._files(name)[:2])
            prog = self.ctx.program(vertex_shader=vert, fragment_shader=self._defines(name, self._expand(name, frag)))
        except Exception as e:  # moderngl raises plain Exception with the compiler log
            msg = f"{name}: {str(e).strip()}"
            if initial and name not in self.programs:  # nothing to fall back on: say which file and why
                raise UserError(f"the {name} shader does not compile: {_first_complaint(str(e))}",
                                file=" + ".join(str(f) for f in self._files(name))) from None
            self.errors[name] = msg
            log.error("shader reload failed, keeping the last good program: %s", msg)
            return False
        finally:  # a file missing now is watched all the same: its coming back is a change
            for f in self._files(name):
                with contextlib.suppress(OSError):
                    self._mtimes[str(f)] = f.stat().st_mtime
        old = self.programs.get(name)
        self.programs[name] = prog
        self.vaos[name] = self.ctx.vertex_array(prog, [])
        if old is not None:
            old.release()
        self.errors.pop(name, None)
        return True

    def reload_if_changed(self) -> list[str]:
        changed = []
        for name in self.specs:
            for f in self._files(name):
                try:
                    m = f.stat().st_mtime
                except OSError:
                    continue
                if self._mtimes.get(str(f)) != m:
                    changed.append(name)
                    break
        for name in changed:
            if self._build(name):
                self.reloads += 1
                log.info("shader %s reloaded", name)
        return changed

    def set(self, name: str, **uniforms: Any) -> Any:
        prog = self.programs[name]
        for k, v in uniforms.items():
            if k in prog:
                u = prog[k]
                if isinstance(v, np.ndarray):
                    u.write(v.astype(np.float32).T.tobytes() if v.ndim == 2 else v.astype(np.float32).tobytes())
                else:
                    u.value = v
        return prog

    def draw(self, name: str) -> None:
        self.vaos[name].render(mode=self.ctx.TRIANGLE_STRIP, vertices=4)


def _first_complaint(log_text: str) -> str:
    """The compiler's first error line (what to fix, and where), or its whole message when none is."""
    lines = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    return next((ln for ln in lines if "error" in ln.lower() and ln.lower() != "glsl compiler failed"),
                " ".join(lines) or "no message")
