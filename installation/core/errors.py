"""Errors a person can act on: what file, where in it, what was expected. The CLI prints them and exits 2."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A mistake in something the user gave us (a show, a model, a file). Printed without a traceback."""

    exit_code = 2

    def __init__(self, message: str, file: str | Path | None = None, key: str | None = None,
                 expected: str | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.expected = expected
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f": {self.key}" if self.key else "") + ": "
        elif self.key:
            where = f"{self.key}: "
        text = where + self.message
        if self.expected:
            text += f" (expected {self.expected})"
        return text
