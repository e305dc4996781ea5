"""Where the runtime's own files are: shaders, show files and models travel inside the installed package
(package data, see pyproject.toml); in a checkout they are at the top of the repository. Caches (the
sample clip when the repository's media/ is not there) go to the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # installation/
REPO_ROOT = PACKAGE_DIR.parent  # the checkout's top (or site-packages, installed from a wheel)


def data_dir(name: str) -> Path:
    """`shaders`, `show_configs` or `models`: inside the installed package when it holds them (a wheel),
    else the repository's own folder of that name."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else REPO_ROOT / name


def in_checkout() -> bool:
    """True when running from the repository (its media/ and scripts/ beside the package)."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "shaders").is_dir()


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/installation, else ~/.cache/installation (not created here)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "installation"
