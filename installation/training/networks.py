"""The networks: pure factories for the pix2pix generator and discriminator.

`define_G(**arch)` and `define_D(**arch)` take the keyword arguments a checkpoint stores under
"arch" / "disc", so a checkpoint rebuilds its own network with no flags repeated.

The U-Net is written flat (a list of down-blocks and a list of up-blocks) rather than as the
recursive UnetSkipConnectionBlock of the well-known pytorch pix2pix code, but it computes the same
function with the same parameter shapes: `pix2pix_convert.py` maps that code's nested state-dict
keys onto these. The ResNet generator keeps that code's flat `model` Sequential layout, so its
checkpoints load unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

NORMS = ("batch", "instance")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":  # pix2pix's instance norm: no affine, no running statistics (so no state)
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def unet_channels(width: int, level: int) -> int:
    """Feature channels after down-block `level` (0 = outermost): width * 2^level, capped at 8x."""
    return width * min(2 ** level, 8)


class Down(nn.Module):
    """LeakyReLU -> 4x4 stride-2 conv -> norm; the outermost block has no activation and the
    innermost no norm, as in pix2pix."""

    def __init__(self, cin: int, cout: int, act: bool, norm: str | None, bias: bool) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(0.2) if act else nn.Identity()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=bias)
        self.norm = _norm(norm, cout) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.act(x)))


UPSAMPLES = ("transpose", "nearest", "bilinear")


def _upsampler(kind: str, cin: int, cout: int, bias: bool) -> nn.Module:
    """x2 upsampling. "transpose" is pix2pix's 4x4 stride-2 transposed conv: its kernel overlaps
    unevenly, so an undertrained decoder paints a periodic grid (Odena et al., Distill 2016).
    "nearest"/"bilinear" resize first, then a 3x3 conv: every output pixel gets the same number of
    taps, so no grid by construction."""
    if kind == "transpose":
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)
    if kind in ("nearest", "bilinear"):
        resize = nn.Upsample(scale_factor=2, mode=kind, **({"align_corners": False} if kind == "bilinear" else {}))
        # Reflection padding: zero padding darkens the border, a second seam the spectrum would see
        return nn.Sequential(resize, nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, bias=bias))
    raise ValueError(f"upsample must be one of {UPSAMPLES}, got {kind!r}")


class Up(nn.Module):
    """ReLU -> x2 upsampling (transposed conv, or resize + 3x3 conv) -> norm (-> dropout); the
    outermost ends in tanh."""

    def __init__(self, cin: int, cout: int, norm: str | None, bias: bool, dropout: bool, last: bool,
                 upsample: str = "transpose") -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.conv = _upsampler(upsample, cin, cout, bias)
        self.norm = _norm(norm, cout) if norm else nn.Identity()
        self.drop = nn.Dropout(0.5) if dropout else nn.Identity()
        self.out = nn.Tanh() if last else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.norm(self.conv(self.act(x)))))


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: `depth` stride-2 down-blocks (8 at 256 reach a 1x1 bottleneck, like
    unet_256), skip connections concatenated before each up-block, tanh output in [-1, 1].

    Dropout sits in the up-blocks of the 8x-wide middle levels (4 .. depth-2), where pix2pix puts it.
    `upsample` defaults to pix2pix's transposed convs, so a checkpoint whose arch record predates the
    key (or one converted from pix2pix) rebuilds as it was trained.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, depth: int = 8,
                 norm: str = "batch", dropout: bool = True, upsample: str = "transpose") -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("a U-Net needs at least 2 down-blocks")
        # Biases are redundant before batch norm; pix2pix drops them everywhere except the last conv.
        bias = norm == "instance"
        self.depth = depth
        self.down = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(depth):
            cin = in_channels if i == 0 else unet_channels(width, i - 1)
            innermost = i == depth - 1
            self.down.append(Down(cin, unet_channels(width, i), act=i > 0,
                                  norm=None if i == 0 or innermost else norm, bias=bias))
        for i in range(depth):
            cout = out_channels if i == 0 else unet_channels(width, i - 1)
            cin = unet_channels(width, i) * (1 if i == depth - 1 else 2)
            self.up.append(Up(cin, cout, norm=None if i == 0 else norm, bias=bias or i == 0,
                              dropout=dropout and 4 <= i <= depth - 2, last=i == 0, upsample=upsample))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], 1))
        return x


class ResnetBlock(nn.Module):
    """pix2pix's residual block (reflection padding); same module indices, so same state-dict keys."""

    def __init__(self, dim: int, norm: str, dropout: bool, bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim),
                                   nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """pix2pix/CycleGAN's ResNet generator (resnet_9blocks): two stride-2 downs, residual blocks, two ups."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, blocks: int = 9,
                 norm: str = "batch", dropout: bool = False) -> None:
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                                   _norm(norm, width), nn.ReLU(True)]
        for i in range(2):
            m = 2 ** i
            layers += [nn.Conv2d(width * m, width * m * 2, 3, 2, 1, bias=bias), _norm(norm, width * m * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(width * 4, norm, dropout, bias) for _ in range(blocks)]
        for i in range(2):
            m = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(width * m, width * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                       _norm(norm, width * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Blur(nn.Module):
    """A fixed 5-tap binomial low-pass ([1, 4, 6, 4, 1] / 16 on each axis, per channel, reflection padding).
    Before a stride-2 convolution it removes what the stride would alias; its gradient is blurred the same
    way, so a discriminator built with it sends the generator no gradient at periods 2 and 4 (the ripple
    a strided PatchGAN grows in the looks' pictures)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k2 = torch.outer(k, k) / 256.0
        self.register_buffer("kernel", k2.expand(channels, 1, 5, 5).clone(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"), self.kernel,
                                    groups=self.channels)


class BlurPool(nn.Module):
    """Blur, then keep every second pixel: Zhang's (2019) anti-aliased subsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.blur = Blur(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(x)[:, :, ::2, ::2]


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN (NLayerDiscriminator): one logit per overlapping patch (70x70 at 3 layers).
    It sees the input and the picture side by side in channels, so in_channels is 6 for RGB pairs.
    blur: a Blur before each stride-2 convolution (anti-aliased, as in Zhang 2019 and StyleGAN2's
    discriminator); no weights of its own, so the state dict's keys shift but its tensors are the same.
    blur_pool: each stride-2 convolution runs at stride 1 (full resolution), its activation follows, then a
    BlurPool subsamples (Zhang's order): the judge sees the finest scales through the nonlinearity, and
    what the stride would alias is blurred away. Same keys and tensors as without (the BlurPool rides in
    the activation's slot), so a plain PatchGAN's weights load into it; four times the cost of those
    convolutions."""

    def __init__(self, in_channels: int = 6, width: int = 64, layers: int = 3, norm: str = "batch",
                 blur: bool = False, blur_pool: bool = False) -> None:
        super().__init__()
        if blur and blur_pool:
            raise ValueError("blur and blur_pool are two ways of the same thing: one at most")
        bias = norm == "instance"

        def strided(cin: int, cout: int, conv_bias: bool) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, 4, 1 if blur_pool else 2, 1, bias=conv_bias)

        def act(channels: int, stride2: bool) -> nn.Module:
            lrelu = nn.LeakyReLU(0.2, True)
            return nn.Sequential(lrelu, BlurPool(channels)) if blur_pool and stride2 else lrelu

        seq: list[nn.Module] = [*([Blur(in_channels)] if blur else []), strided(in_channels, width, True),
                                act(width, True)]
        mult = 1
        for n in range(1, layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride2 = n < layers  # the last one keeps the resolution: finer patches
            if blur and stride2:
                seq.append(Blur(width * prev))
            conv = strided(width * prev, width * mult, bias) if stride2 else \
                nn.Conv2d(width * prev, width * mult, 4, 1, 1, bias=bias)
            seq += [conv, _norm(norm, width * mult), act(width * mult, stride2)]
        seq.append(nn.Conv2d(width * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def default_depth(size: int) -> int:
    """Down-blocks that bring `size` to a 1x1 bottleneck (8 at 256, 9 at 512), as unet_256 does."""
    depth = int(math.log2(size))
    if 2 ** depth != size:
        raise ValueError(f"U-Net size must be a power of two, got {size}")
    return depth


def define_G(kind: str = "unet", **kwargs: Any) -> nn.Module:
    """The generator described by a checkpoint's "arch" dict, with pix2pix's N(0, 0.02) init.
    kind "unet" (what the trainer makes) or "resnet" (for converted pix2pix checkpoints)."""
    net: nn.Module
    if kind == "unet":
        net = UnetGenerator(**kwargs)
    elif kind == "resnet":
        net = ResnetGenerator(**kwargs)
    else:
        raise ValueError(f'generator kind must be "unet" or "resnet", got {kind!r}')
    init_weights(net)
    return net


def define_D(**kwargs: Any) -> nn.Module:
    """The PatchGAN discriminator described by a checkpoint's "disc" dict."""
    net = PatchDiscriminator(**kwargs)
    init_weights(net)
    return net


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """pix2pix's 'normal' init: conv weights N(0, gain), norm scales N(1, gain), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
