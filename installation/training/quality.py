"""How a model's picture looks, in figures: the checkerboard spike, and fine detail.

A decoder of stride-2 transposed convolutions leaves a periodic grid in an undertrained model's
picture (Odena, Dumoulin and Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016). The
grid shows in the grey picture's 2-D spectrum as sharp peaks at the frequencies of periods 2, 4, 8
and 16 px (and their diagonals), where a photograph's spectrum falls off smoothly. The spike figure
is the strongest of those peaks against the median power of its spectral neighbourhood. Measured
with this function: photographs at 256x256 score 2-7 (a room with slats and spokes 12.5), the first
default model (transposed convs, 24 epochs) 55 on a portrait, 86 on a person, 581 on a room.

The detail figure is the variance of the Laplacian of the grey picture at 256x256: photographs of
people score about 1,000-2,000, the looks' own wallpaper photographs 100-250 (medians), a blur under
20. Grain and noise raise it too, so it is read beside the pictures themselves.

The held-back photographs are pictures of people and rooms that no training set and no sample clip
uses: a portrait, a person outdoors, a room.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from installation.core.errors import UserError
from installation.vision.preprocess import Chain

PERIODS = (2, 4, 8, 16)
NEIGHBOURHOOD = 5  # half-side, in frequency bins, of the window the peak is compared with


def spike_figure(picture: np.ndarray, periods: Iterable[int] = PERIODS) -> float:
    """The strongest grid peak of `picture` (HxW grey or HxWx3 uint8/float) over its neighbourhood's median."""
    grey = picture if picture.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(picture), cv2.COLOR_RGB2GRAY)
    g = grey.astype(np.float64)
    g -= g.mean()
    h, w = g.shape
    # A window, so that the picture's borders (a step from one edge to the other when the FFT wraps
    # round) don't smear power along the axes and hide or fake a peak there
    g *= np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(g)) ** 2
    best = 0.0
    for p in periods:
        ky, kx = h // p, w // p
        for fy, fx in ((ky, 0), (0, kx), (ky, kx), (ky, -kx)):
            best = max(best, _peak_ratio(power, fy, fx))
    return best


def _peak_ratio(power: np.ndarray, fy: int, fx: int) -> float:
    """Power at bin (fy, fx) against the median of the surrounding window without its 3x3 core (where
    the window's leakage spreads a peak). The bin alone, not the core's maximum: a decoder's grid has
    a period that divides the picture, so it lands exactly on the bin, while the maximum of nine bins
    of a smooth spectrum's noise would already score about 4."""
    h, w = power.shape
    r = NEIGHBOURHOOD
    ys = np.arange(fy - r, fy + r + 1) % h
    xs = np.arange(fx - r, fx + r + 1) % w
    win = power[np.ix_(ys, xs)]
    core = win[r, r]
    ring = np.ones_like(win, bool)
    ring[r - 1:r + 2, r - 1:r + 2] = False
    med = float(np.median(win[ring]))
    return float(core / med) if med > 0 else 0.0


def held_back_photographs() -> dict[str, np.ndarray]:
    """RGB uint8 photographs of people and rooms that no look's set and no clip uses, from installed packages:
    grace_hopper (matplotlib's sample data; US Navy photograph, public domain), camera (scikit-image's
    cameraman) and motorcycle_left (scikit-image; a Middlebury stereo picture of a room with a motorbike)."""
    import matplotlib
    import skimage.data

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    bgr = cv2.imread(str(hopper), cv2.IMREAD_COLOR)
    pictures = {"grace_hopper": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)}
    pictures["camera"] = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2RGB)
    pictures["motorcycle_left"] = np.ascontiguousarray(skimage.data.stereo_motorcycle()[0])
    return pictures


def model_input(chain: Chain, picture: np.ndarray) -> np.ndarray:
    """What the model sees of one still picture: the card's chain without its temporal steps."""
    a, _ = chain.for_training().apply(np.ascontiguousarray(picture), None)
    return a


def model_spike_figure(model_dir: str | Path, pictures: dict[str, np.ndarray] | None = None,
                       precision: str = "auto") -> dict[str, float]:
    """The spike figure of the model's own output (a real ONNX Runtime session) on each held-back photograph.
    precision: "auto" (the graph the show plays on the CPU: the int8 twin where there is one) or "fp32"."""
    from installation.inference.models import load_model

    model = load_model(model_dir, providers="cpu", precision=precision)
    pictures = held_back_photographs() if pictures is None else pictures
    return {name: spike_figure(model.infer(model_input(model.card.chain, pic))) for name, pic in pictures.items()}


DETAIL_SIDE = 256


def square(picture: np.ndarray, side: int = DETAIL_SIDE) -> np.ndarray:
    """The picture's short side scaled to `side` (area), centre-cropped to side x side."""
    h, w = picture.shape[:2]
    k = side / min(h, w)
    img = cv2.resize(picture, (max(side, round(w * k)), max(side, round(h * k))), interpolation=cv2.INTER_AREA)
    y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    return img[y:y + side, x:x + side]


def detail_figure(picture: np.ndarray) -> float:
    """The variance of the Laplacian of the grey picture at 256x256 (resized first if it is another size)."""
    grey = picture if picture.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(picture), cv2.COLOR_RGB2GRAY)
    if grey.shape != (DETAIL_SIDE, DETAIL_SIDE):
        grey = square(grey)
    return float(cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F).var())


IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")  # the picture files a photograph set holds
PORTRAIT = "grace_hopper"  # the held-back picture a look's share of its photographs' detail is read on


def set_pictures(folder: Path) -> list[Path]:
    """The pictures of a photograph set folder, in name order."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXT)
    if not files:
        raise UserError("no pictures", file=folder, expected="a set folder of photographs (jpg/png)")
    return files


def photographs_detail(folder: Path) -> list[float]:
    """The detail figure of each picture of a photograph set (grey, short side 256, centre crop): the
    figures a look's picture is measured against."""
    return [detail_figure(square(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE))) for f in set_pictures(folder)]

