"""The spike penalty: `quality.spike_figure`, made differentiable, as a loss on the generator's picture.

A strided PatchGAN's gradient with respect to the picture carries power at the periods of its strides
(2, 4, 8), and a generator that follows it grows a ripple or grid there (docs/texture.md: the texture
recipe's runs reached spike figures of 100-300 while their detail rose). The penalty looks where
spike_figure looks, on every training picture: the grey picture, mean removed, under a Hann window; its
power spectrum; the bins of periods 2, 4, 8 and 16 px along each axis and both diagonals, each against
the median power of the 11x11 window round it without its 3x3 core (`spike_ratios`: the maximum of a
picture's ratios is its spike figure).

What it charges (`spike_penalty`) is each bin's amplitude over its neighbourhood's, sqrt(ratio), beyond
sqrt(margin): a picture's own scale, so a softer picture pays as much for the same grid as a sharp one. The
first form of it, the excess amplitude over the whole picture's RMS, could be paid by blurring everything
(fine detail counts little against the RMS), and a fine-tune of the water run with it lost its detail in
216 steps (346 -> 3.8, docs/texture.md). The neighbourhood's median is a constant of the step (no
gradient), so the only way down is less power at the grid's own frequencies, never more noise beside
them. Its gradient grows as 1 / the neighbourhood's amplitude, which in the looks' pictures (values in
[-1, 1], little power at periods of 2-16 px) puts the useful weights near 1e-5: on the long runs'
checkpoints the penalty's gradient on the picture was 6,500 (water) and 17,600 (leaves) times the weight,
the adversarial term's 0.5 and 0.2. A photograph (ratios about 1, at worst 2-7) costs next to nothing.
"""

from __future__ import annotations

import torch

from installation.training.quality import NEIGHBOURHOOD, PERIODS

GREY = (0.299, 0.587, 0.114)  # cv2.COLOR_RGB2GRAY's weights, which spike_figure uses
MARGIN = 5.0  # a bin up to this many times its neighbourhood's power costs nothing (photographs: 2-7 at worst;
#              the bar the looks are held to is 10)


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
    """The batch's mean, over pictures, of the sum over the grid bins of max(0, sqrt(ratio) - sqrt(margin))."""
    peaks, medians, _ = _spectrum(picture, periods)
    amplitude = peaks.clamp_min(1e-20).sqrt() / medians.clamp_min(1e-20).sqrt()
    return torch.relu(amplitude - margin ** 0.5).sum(dim=1).mean()
