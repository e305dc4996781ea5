"""The spike penalty: `quality.spike_figure`, made differentiable, as a loss on the generator's picture.

A strided PatchGAN's gradient with respect to the picture carries power at the periods of its strides
(2, 4, 8), and a generator that follows it grows a ripple or grid there (docs/texture.md: the texture
recipe's runs reached spike figures of 100-300 while their detail rose). The penalty looks where
spike_figure looks, on every training picture: the grey picture, mean removed, under a Hann window; its
power spectrum; the bins of periods 2, 4, 8 and 16 px along each axis and both diagonals, each against
the median power of the 11x11 window round it without its 3x3 core (`spike_ratios`: the maximum of a
picture's ratios is its spike figure).

What it charges (`spike_penalty`) is each bin's amplitude above sqrt(margin) times its neighbourhood's,
over the picture's RMS amplitude per bin: how strong the grid is beside the picture's own contrast. An
amplitude, not the ratio itself: the ratio's gradient grows as 1 / the grid's amplitude (a scale-free
figure of a faint grid is steep), which swamped the adversarial and L1 terms by four orders of magnitude
on the long runs' checkpoints; this gradient is a sinusoid at the bin's frequency whose size does not
depend on the grid's. The neighbourhood's median and the RMS are constants of the step (no gradient), so
the only way down is less power at the grid's own frequencies, never more noise beside them. A
photograph (ratios about 1, at worst 2-7) costs next to nothing.
"""

from __future__ import annotations

import torch

from installation.training.quality import NEIGHBOURHOOD, PERIODS

GREY = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY's weights, which spike_figure uses
MARGIN = 3.0  # a bin up to this many times its neighbourhood's power costs nothing (photographs: 2-7 at worst)


def _bins(h: int, w: int, periods: tuple[int, ...]) -> list[tuple[int, int]]:
    out = []
    for p in periods:
        ky, kx = h // p, w // p
        out += [(ky, 0), (0, kx), (ky, kx), (ky, -kx)]
    return out


def _spectrum(picture: torch.Tensor, periods: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(power at each grid bin (B, bins), its neighbourhood's median (B, bins), no gradient, the whole
    spectrum's mean power (B,), no gradient) of a (B, 3, H, W) or (B, 1, H, W) batch."""
    x = picture.float()
    x = sum(c * x[:, i] for i, c in enumerate(GREY)) if x.shape[1] == 3 else x[:, 0]
    h, w = x.shape[1:]
    x = x - x.mean(dim=(1, 2), keepdim=True)
    # numpy's np.hanning (symmetric), as spike_figure windows
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=x.dtype, device=x.device),
                         torch.hann_window(w, periodic=False, dtype=x.dtype, device=x.device))
    power = torch.fft.fft2(x * window).abs().square()
    r = NEIGHBOURHOOD
    ring = torch.ones(2 * r + 1, 2 * r + 1, dtype=torch.bool, device=x.device)
    ring[r - 1:r + 2, r - 1:r + 2] = False
    offsets = torch.arange(-r, r + 1, device=x.device)
    peaks, medians = [], []
    for fy, fx in _bins(h, w, periods):
        win = power.detach()[:, (fy + offsets) % h][:, :, (fx + offsets) % w]  # (B, 2r+1, 2r+1)
        medians.append(win[:, ring].quantile(0.5, dim=1))  # quantile 0.5 is numpy's median
        peaks.append(power[:, fy % h, fx % w])
    return torch.stack(peaks, 1), torch.stack(medians, 1), power.detach().mean(dim=(1, 2))


def spike_ratios(picture: torch.Tensor, periods: tuple[int, ...] = PERIODS) -> torch.Tensor:
    """(B, bins) power ratios, in the order of spike_figure's bins; a row's maximum is that picture's spike
    figure."""
    peaks, medians, _ = _spectrum(picture, periods)
    return peaks / medians.clamp_min(1e-12)


def spike_penalty(picture: torch.Tensor, margin: float = MARGIN, periods: tuple[int, ...] = PERIODS) -> torch.Tensor:
    """The batch's mean, over pictures, of the sum over the grid bins of
    max(0, sqrt(power) - sqrt(margin x neighbourhood median)) / sqrt(mean power)."""
    peaks, medians, mean = _spectrum(picture, periods)
    excess = torch.relu(peaks.clamp_min(1e-20).sqrt() - (margin * medians).sqrt())
    return (excess / mean.clamp_min(1e-20).sqrt()[:, None]).sum(dim=1).mean()
