#!/usr/bin/env python3
"""Licensed photographs for training looks, from Debian's wallpaper packages (no model hub or image
site is reachable from the machines this project trains on; the Debian mirror is).

    python scripts/fetch_photos.py [--out runs/photos]

gets the packages with `apt-get download` and unpacks them with `dpkg-deb -x` (nothing is installed),
keeps the largest version of each picture, and writes:

    OUT/catalogue.json      every picture: package, version, file, size, author, licence, where the
                            licence was read, and whether it is a photograph (the rest are renders)
    OUT/sets/NAME/*.jpg     the curated themed sets (short side 1024 px), one folder per look
    OUT/sets/NAME.json      the set: its pictures with author and licence, what was left out and why
    OUT/sets/NAME.jpg       a contact sheet, to look at the set

The sets were chosen by looking at contact sheets of every picture; SETS below says what is in each.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

PACKAGES = ("plasma-workspace-wallpapers", "mate-backgrounds", "gnome-backgrounds")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")

# Picture ids are "plasma/NAME" (a wallpaper folder) or "mate/FILE-STEM". Everything not named as a
# photograph is a render, an illustration or a logo: left out of every set (a look is a world of
# photographs, and flat vector colour teaches the model nothing about texture).
PHOTOGRAPHS = {
    "plasma/BytheWater", "plasma/ColdRipple", "plasma/ColorfulCups", "plasma/DarkestHour",
    "plasma/EveningGlow", "plasma/FallenLeaf", "plasma/Grey", "plasma/Kite", "plasma/OneStandsOut",
    "plasma/Path", "plasma/Volna", "plasma/summer_1am",
    "mate/Aqua", "mate/Blinds", "mate/Dune", "mate/FreshFlower", "mate/Garden", "mate/GreenMeadow",
    "mate/LadyBird", "mate/RainDrops", "mate/Storm", "mate/TwoWings", "mate/Wood", "mate/YellowFlower",
}

SETS: dict[str, dict[str, Any]] = {
    "water": {
        "title": "Water and sky at dusk",
        "pictures": ["plasma/BytheWater", "plasma/ColdRipple", "plasma/DarkestHour", "plasma/EveningGlow",
                     "plasma/summer_1am", "plasma/Volna", "plasma/Kite", "mate/Aqua", "mate/Storm"],
        "note": "lakes, jetties, ripples, surf seen from above, a drop, storm and open sky: blues and dusk pinks",
    },
    "leaves": {
        "title": "Green: leaves, grass, moss, forest",
        "pictures": ["plasma/OneStandsOut", "plasma/Path", "mate/Blinds", "mate/GreenMeadow", "mate/LadyBird",
                     "mate/RainDrops", "mate/Dune"],
        "note": "close-ups of leaf veins, blades of grass, moss from above, a spruce forest, dune grass",
    },
    "bloom": {
        "title": "Petals and fallen leaves: warm colour",
        "pictures": ["plasma/FallenLeaf", "mate/FreshFlower", "mate/Garden", "mate/YellowFlower", "mate/TwoWings"],
        "note": "macro photographs of orange, red and yellow petals, seeds and autumn leaves, soft backgrounds",
    },
}

LEFT_OUT_PHOTOGRAPHS = {
    "plasma/Grey": "black-and-white architecture: no colour world to paint with",
    "plasma/ColorfulCups": "manufactured objects, a world of its own that fits none of the sets",
    "mate/Wood": "almost white planks: too little to learn",
}
LEFT_OUT_RENDERS = ("every other picture is a render, an illustration, a gradient or a logo (gnome-backgrounds 43 "
                    "ships no photographs at all; its copyright file still lists the photographs of older "
                    "releases); plasma's Autumn is painted and MilkyWay is a render")


# ---- fetching ----------------------------------------------------------------------------------

def fetch(out: Path) -> dict[str, Path]:
    """Each package unpacked under out/pkgs/NAME; downloads are kept, so a second run is offline."""
    debs, pkgs = out / "debs", out / "pkgs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    roots = {}
    for p in PACKAGES:
        deb = sorted(debs.glob(f"{p}_*.deb"))[-1]
        root = pkgs / p
        if not (root / "usr").is_dir():
            root.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        roots[p] = root
    return roots


def deb_version(out: Path, package: str) -> str:
    deb = sorted((out / "debs").glob(f"{package}_*.deb"))[-1]
    return deb.name.split("_")[1].replace("%3a", ":")


def pixels(path: Path) -> int:
    m = re.match(r"(\d+)x(\d+)", path.stem)
    if m:  # plasma names every size WIDTHxHEIGHT; reading the file would be slow
        return int(m[1]) * int(m[2])
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return 0 if img is None else img.shape[0] * img.shape[1]


# ---- licences ----------------------------------------------------------------------------------

def dep5_stanzas(text: str) -> list[dict[str, str]]:
    """Debian machine-readable copyright: paragraphs of 'Field: value' with indented continuations."""
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def dep5_lookup(stanzas: list[dict[str, str]], relpath: str) -> dict[str, str] | None:
    """The last Files stanza that matches wins, as the format says."""
    found = None
    for s in stanzas:
        if "Files" in s and any(fnmatch.fnmatch(relpath, pat) for pat in s["Files"].split()):
            found = s
    return found


def plasma_metadata(folder: Path) -> tuple[str, str]:
    meta = folder / "metadata.json"
    if meta.is_file():
        k = json.loads(meta.read_text()).get("KPlugin", {})
        authors = ", ".join(a.get("Name", "") for a in k.get("Authors", []))
        return authors, k.get("License", "")
    desktop = folder / "metadata.desktop"
    if desktop.is_file():
        d = dict(ln.split("=", 1) for ln in desktop.read_text().splitlines() if "=" in ln)
        return d.get("X-KDE-PluginInfo-Author", ""), d.get("X-KDE-PluginInfo-License", "")
    return "", ""


def catalogue(out: Path, roots: dict[str, Path]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    # plasma: one folder per wallpaper, each size of it under contents/images (and images_dark)
    root = roots["plasma-workspace-wallpapers"]
    copyright_file = root / "usr/share/doc/plasma-workspace-wallpapers/copyright"
    for folder in sorted((root / "usr/share/wallpapers").iterdir()):
        files = [f for f in (folder / "contents/images").glob("*") if f.suffix.lower() in IMAGE_EXT]
        if not files:
            continue
        best = max(files, key=pixels)
        author, licence = plasma_metadata(folder)
        items.append({"id": f"plasma/{folder.name}", "package": "plasma-workspace-wallpapers",
                      "version": deb_version(out, "plasma-workspace-wallpapers"),
                      "file": str(best.relative_to(root)), "author": author, "licence": licence,
                      "licence_source": f"{folder.relative_to(root)}/metadata.json (the package's "
                                        f"{copyright_file.relative_to(root)} says GPL-2+ for Files: *)",
                      "photograph": f"plasma/{folder.name}" in PHOTOGRAPHS, "_path": best})
    # mate: one file per picture (Elephants in three sizes), licences in DEP-5 stanzas
    root = roots["mate-backgrounds"]
    base = root / "usr/share/backgrounds/mate"
    stanzas = dep5_stanzas((root / "usr/share/doc/mate-backgrounds/copyright").read_text())
    by_stem: dict[str, list[Path]] = {}
    for f in base.glob("*/*"):
        if f.suffix.lower() in IMAGE_EXT:
            by_stem.setdefault(re.sub(r"_\d+x\d+$", "", f.stem), []).append(f)
    for stem, files in sorted(by_stem.items()):
        best = max(files, key=pixels)
        rel = str(best.relative_to(base))
        s = dep5_lookup(stanzas, rel) or {}
        holders = "; ".join(re.sub(r"\s*<[^>]*>", "", ln).strip(" ´")
                            for ln in s.get("Copyright", "").splitlines() if ln.strip())
        items.append({"id": f"mate/{stem}", "package": "mate-backgrounds",
                      "version": deb_version(out, "mate-backgrounds"), "file": str(best.relative_to(root)),
                      "author": holders, "licence": s.get("License", ""),
                      "licence_source": "usr/share/doc/mate-backgrounds/copyright",
                      "photograph": f"mate/{stem}" in PHOTOGRAPHS, "_path": best})
    # gnome: listed for completeness; release 43 ships only renders
    root = roots["gnome-backgrounds"]
    for f in sorted((root / "usr/share/backgrounds/gnome").glob("*")):
        if f.suffix.lower() in IMAGE_EXT:
            items.append({"id": f"gnome/{f.stem}", "package": "gnome-backgrounds",
                          "version": deb_version(out, "gnome-backgrounds"), "file": str(f.relative_to(root)),
                          "author": "GNOME design team", "licence": "CC-BY-SA-3.0 (see the copyright file)",
                          "licence_source": "usr/share/doc/gnome-backgrounds/copyright",
                          "photograph": False, "_path": f})
    for it in items:
        img = cv2.imread(str(it["_path"]), cv2.IMREAD_COLOR)
        it["size"] = [int(img.shape[1]), int(img.shape[0])] if img is not None else None
    return items


# ---- sets --------------------------------------------------------------------------------------

def write_sets(out: Path, items: list[dict[str, Any]], short_side: int) -> None:
    by_id = {it["id"]: it for it in items}
    sets_dir = out / "sets"
    for name, spec in SETS.items():
        folder = sets_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.jpg"):
            old.unlink()
        members, thumbs = [], []
        for pid in spec["pictures"]:
            it = by_id[pid]
            img = cv2.imread(str(it["_path"]), cv2.IMREAD_COLOR)
            h, w = img.shape[:2]
            k = short_side / min(h, w)
            if k < 1:  # keeping the originals would only slow the trainer's loading down
                img = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
            fname = pid.replace("/", "_") + ".jpg"
            cv2.imwrite(str(folder / fname), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            members.append({k: v for k, v in it.items() if not k.startswith("_")} | {"set_file": fname})
            thumbs.append(_thumb(img, pid))
        record = {"set": name, "title": spec["title"], "note": spec["note"], "pictures": members,
                  "left_out": {**LEFT_OUT_PHOTOGRAPHS, "renders": LEFT_OUT_RENDERS},
                  "fetched_by": "python scripts/fetch_photos.py"}
        (sets_dir / f"{name}.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        cv2.imwrite(str(sets_dir / f"{name}.jpg"), _sheet(thumbs))
        print(f"set {name}: {len(members)} photographs -> {folder}")


def _thumb(img: np.ndarray, label: str) -> np.ndarray:
    h, w = img.shape[:2]
    t = cv2.resize(img, (240, round(240 * h / w)), interpolation=cv2.INTER_AREA)[:150]
    t = cv2.copyMakeBorder(t, 0, 168 - t.shape[0], 0, 0, cv2.BORDER_CONSTANT)
    cv2.putText(t, label, (3, 162), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    return t


def _sheet(thumbs: list[np.ndarray], cols: int = 4) -> np.ndarray:
    while len(thumbs) % cols:
        thumbs.append(np.zeros_like(thumbs[0]))
    return np.vstack([np.hstack(thumbs[i:i + cols]) for i in range(0, len(thumbs), cols)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/photos"), help="where to put everything (git-ignored)")
    ap.add_argument("--short-side", type=int, default=1024, help="short side of the set copies (default 1024)")
    args = ap.parse_args(argv)
    try:
        roots = fetch(args.out)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"error: could not fetch the packages ({e}); `apt-get update` first, on a Debian/Ubuntu machine",
              file=sys.stderr)
        return 1
    items = catalogue(args.out, roots)
    (args.out / "catalogue.json").write_text(json.dumps([{k: v for k, v in it.items() if not k.startswith("_")}
                                                         for it in items], indent=1, ensure_ascii=False) + "\n")
    n_photo = sum(it["photograph"] for it in items)
    print(f"catalogue: {len(items)} pictures, {n_photo} photographs -> {args.out / 'catalogue.json'}")
    write_sets(args.out, items, args.short_side)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    sys.exit(main())
