"""The networks and the conversion of checkpoints of the well-known pytorch pix2pix code.

The reference networks below are written here from that code's published structure (nested
UnetSkipConnectionBlock with `submodule`, norm_layer=BatchNorm2d, use_dropout; the flat ResNet
generator), not derived from ours, so a conversion that maps a key wrongly fails these tests.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from installation.core.errors import UserError
from installation.training.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    count_parameters,
    default_depth,
    define_D,
    define_G,
)
from installation.training.pix2pix_convert import arch_kwargs, convert_state_dict, guess_arch

# ---- the reference: pytorch-CycleGAN-and-pix2pix, models/networks.py ---------------------------


class RefUnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        if type(norm_layer) is functools.partial:
            use_bias = norm_layer.func == nn.InstanceNorm2d
        else:
            use_bias = norm_layer == nn.InstanceNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            down = [downconv]
            up = [uprelu, upconv, nn.Tanh()]
            model = [*down, submodule, *up]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv]
            up = [uprelu, upconv, upnorm]
            model = down + up
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv, downnorm]
            up = [uprelu, upconv, upnorm]
            model = [*down, submodule, *up, nn.Dropout(0.5)] if use_dropout else [*down, submodule, *up]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False):
        super().__init__()
        unet_block = RefUnetSkipConnectionBlock(ngf * 8, ngf * 8, input_nc=None, submodule=None,
                                                norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            unet_block = RefUnetSkipConnectionBlock(ngf * 8, ngf * 8, input_nc=None, submodule=unet_block,
                                                    norm_layer=norm_layer, use_dropout=use_dropout)
        unet_block = RefUnetSkipConnectionBlock(ngf * 4, ngf * 8, input_nc=None, submodule=unet_block,
                                                norm_layer=norm_layer)
        unet_block = RefUnetSkipConnectionBlock(ngf * 2, ngf * 4, input_nc=None, submodule=unet_block,
                                                norm_layer=norm_layer)
        unet_block = RefUnetSkipConnectionBlock(ngf, ngf * 2, input_nc=None, submodule=unet_block,
                                                norm_layer=norm_layer)
        self.model = RefUnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=unet_block,
                                                outermost=True, norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
                 norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            block += [nn.Dropout(0.5)]
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=use_bias),
                  norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False, n_blocks=6):
        super().__init__()
        use_bias = norm_layer == nn.InstanceNorm2d
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 4
        for _ in range(n_blocks):
            model += [RefResnetBlock(ngf * mult, norm_layer, use_dropout, use_bias)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """Weights and batch-norm statistics away from their init values, so every key matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return net.eval()


# ---- tests ------------------------------------------------------------------------------------


def test_unet_256_has_pix2pix_size():
    G = define_G("unet", width=64, depth=8)
    ref = RefUnetGenerator(3, 3, 8, 64, use_dropout=True)
    assert count_parameters(G) == count_parameters(ref)
    assert 54.0e6 < count_parameters(G) < 54.8e6  # the design notes' 54.4 M


@pytest.mark.parametrize("size,depth", [(32, 5), (64, 6)])
def test_unet_shapes_and_range(size, depth):
    G = define_G("unet", width=4, depth=depth).eval()
    y = G(torch.randn(2, 3, size, size) * 3)
    assert y.shape == (2, 3, size, size)
    assert y.abs().max() <= 1.0


def test_default_depth():
    assert default_depth(256) == 8
    assert default_depth(512) == 9
    with pytest.raises(ValueError):
        default_depth(300)


def test_dropout_only_in_the_wide_middle():
    G = UnetGenerator(width=4, depth=8, dropout=True)
    with_dropout = [i for i, up in enumerate(G.up) if isinstance(up.drop, nn.Dropout)]
    assert with_dropout == [4, 5, 6]  # unet_256: the num_downs - 5 = 3 blocks around the innermost
    G.eval()
    x = torch.randn(1, 3, 256, 256)
    assert torch.equal(G(x), G(x))  # eval mode is deterministic: no dropout


def test_discriminator_patch_output():
    D = define_D(width=8, layers=3)
    assert isinstance(D, PatchDiscriminator)
    assert D(torch.randn(2, 6, 64, 64)).shape == (2, 1, 6, 6)


@pytest.mark.parametrize("num_downs,ngf,size", [(8, 4, 256), (7, 4, 128)])
def test_pix2pix_unet_checkpoint_converts_and_matches(num_downs, ngf, size):
    ref = _randomise(RefUnetGenerator(3, 3, num_downs, ngf, use_dropout=True), seed=num_downs)
    state = ref.state_dict()
    assert "model.model.1.model.3.model.1.weight" in state  # the nesting the converter reads
    name = guess_arch(state, "latest_net_G.pth")
    assert name == f"unet_{size}"
    kwargs, default_size = arch_kwargs(name, state, "latest_net_G.pth")
    assert default_size == size and kwargs["width"] == ngf and kwargs["depth"] == num_downs
    G = define_G(**kwargs)
    G.load_state_dict(convert_state_dict(state, kwargs))
    G.eval()
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), ref(x), atol=1e-5, rtol=1e-5)


def test_pix2pix_resnet_checkpoint_loads_and_matches():
    ref = _randomise(RefResnetGenerator(3, 3, 4, use_dropout=True, n_blocks=9), seed=3)
    state = ref.state_dict()
    name = guess_arch(state, "latest_net_G.pth")
    assert name == "resnet_9blocks"
    kwargs, _ = arch_kwargs(name, state, "latest_net_G.pth")
    assert kwargs["dropout"] is True and kwargs["norm"] == "batch"
    G = define_G(**kwargs)
    assert isinstance(G, ResnetGenerator)
    G.load_state_dict(convert_state_dict(state, kwargs))
    G.eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), ref(x), atol=1e-5, rtol=1e-5)


def test_instance_norm_unet_is_recognised():
    ref = _randomise(RefUnetGenerator(3, 3, 7, 4, norm_layer=functools.partial(
        nn.InstanceNorm2d, affine=False, track_running_stats=False), use_dropout=False), seed=5)
    kwargs, _ = arch_kwargs("unet_128", ref.state_dict(), "x.pth")
    assert kwargs["norm"] == "instance"
    G = define_G(**{**kwargs, "dropout": False}).eval()
    G.load_state_dict(convert_state_dict(ref.state_dict(), kwargs))
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(G(x), ref(x), atol=1e-5, rtol=1e-5)


def test_wrong_arch_is_a_user_error():
    state = RefUnetGenerator(3, 3, 7, 4).state_dict()
    with pytest.raises(UserError, match="unet_128, not unet_256") as e:
        arch_kwargs("unet_256", state, "latest_net_G.pth")
    assert e.value.file == "latest_net_G.pth"
    with pytest.raises(UserError, match="not a generator"):
        guess_arch({"fc.weight": torch.zeros(2, 2)}, "other.pth")


# ---- the resize-then-convolve decoder ----------------------------------------------------------


def _decoder_of_ones(upsample: str) -> nn.Module:
    """One up-block with every weight 1 and no bias: what it makes of a flat input shows its kernel's
    footprint alone (Odena et al.'s demonstration of the checkerboard)."""
    from installation.training.networks import Up

    up = Up(4, 1, norm=None, bias=False, dropout=False, last=False, upsample=upsample)
    for p in up.parameters():
        nn.init.ones_(p)
    return up.eval()


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_resize_decoder_paints_a_flat_input_flat(upsample):
    with torch.no_grad():
        y = _decoder_of_ones(upsample)(torch.ones(1, 4, 16, 16))[0, 0]
    assert y.shape == (32, 32)
    torch.testing.assert_close(y, torch.full_like(y, 36.0))  # 9 taps x 4 channels everywhere, borders too


def test_transposed_decoder_paints_a_grid_on_a_flat_input():
    with torch.no_grad():
        y = _decoder_of_ones("transpose")(torch.ones(1, 4, 16, 16))[0, 0, 2:-2, 2:-2]
    assert float(y.std()) == 0.0  # the interior is even: 4 taps of a 4x4 stride-2 kernel ...
    edge = _decoder_of_ones("transpose")(torch.ones(1, 4, 16, 16))[0, 0].detach()
    assert float(edge[0].std()) > 0  # ... but uneven where the overlaps thin out
    # a flat input is the easy case; any uneven kernel paints a period-2 grid on one
    up = _decoder_of_ones("transpose")
    with torch.no_grad():
        up.conv.weight[..., ::2, ::2] = 2.0
        y = up(torch.ones(1, 4, 16, 16))[0, 0, 2:-2, 2:-2]
    assert float(y[0::2, 0::2].mean()) != float(y[1::2, 1::2].mean())


@pytest.mark.parametrize("upsample", ["bilinear", "nearest"])
def test_new_unets_have_no_transposed_convolutions(upsample):
    G = define_G(kind="unet", width=4, depth=8, upsample=upsample).eval()
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in G.modules())
    with torch.no_grad():
        y = G(torch.rand(1, 3, 256, 256) * 2 - 1)
    assert y.shape == (1, 3, 256, 256) and float(y.abs().max()) <= 1.0


def test_an_arch_record_without_upsample_rebuilds_transposed_convs():
    """Checkpoints written before the key, and converted pix2pix ones, keep the decoder they were trained with."""
    old = {"kind": "unet", "in_channels": 3, "out_channels": 3, "width": 4, "depth": 5, "norm": "batch",
           "dropout": True}
    G = define_G(**old)
    assert sum(isinstance(m, nn.ConvTranspose2d) for m in G.modules()) == 5
    G2 = define_G(**old)
    G2.load_state_dict(G.state_dict())  # the same keys and shapes as before the key existed
    kwargs, _ = arch_kwargs("unet_128", RefUnetGenerator(3, 3, 7, 4).state_dict(), "x.pth")
    assert "upsample" not in kwargs
    assert any(isinstance(m, nn.ConvTranspose2d) for m in define_G(**kwargs).modules())


def test_unknown_upsample_is_refused():
    with pytest.raises(ValueError, match="upsample must be one of"):
        define_G(kind="unet", width=4, depth=5, upsample="pixelshuffle")



def _grid_share(g: np.ndarray, period: int) -> float:
    """The share of a map's power (Hann window) at the frequencies of `period` px on both axes and diagonals."""
    g = (g - g.mean()) * np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.fft2(g)) ** 2
    k = g.shape[0] // period
    return float(sum(power[fy, fx] for fy, fx in ((k, 0), (0, k), (k, k), (k, -k))) / power.sum())


def test_anti_aliased_discriminator_sends_no_grid_gradient():
    """The generator learns from D's gradient with respect to its picture; a strided PatchGAN's has power at
    periods 2, 4 and 8 (its strides, transposed), which a trained look paints as a ripple. A low-pass before
    each stride takes it out (measured at 256: periods 2 and 4 down by 10^3 or more, 8 by about 10)."""
    shares = {}
    for blur in (False, True):
        torch.manual_seed(0)
        D = define_D(in_channels=6, width=8, layers=3, norm="batch", blur=blur)
        x = torch.zeros(1, 6, 128, 128, requires_grad=True)
        D(x + torch.linspace(-0.5, 0.5, 128)).mean().backward()  # a smooth ramp: any grid is D's own
        grad = x.grad[0, 3:].mean(0).double().numpy()
        shares[blur] = {p: _grid_share(grad, p) for p in (2, 4, 8)}
    assert shares[True][2] < shares[False][2] / 1000 and shares[True][4] < shares[False][4] / 50, shares
    assert shares[True][8] < shares[False][8] / 3, shares
    assert not any("kernel" in k for k in define_D(blur=True).state_dict())  # the same weights as without


def test_blur_pool_discriminator_sees_the_finest_scale_but_sends_little_grid():
    """Zhang's order (a stride-1 convolution at full resolution, its activation, then blur and subsample):
    the judge still answers a period-2 texture, where a low-pass on its input (blur) is blind to it; and its
    gradient carries far less power at the strides' periods than the plain PatchGAN's (measured at width 8,
    128 px: periods 2 / 4 / 8 down by about 100 / 35 / 5). Its weights are the plain one's, key for key."""
    ramp = torch.linspace(-0.5, 0.5, 128).expand(1, 6, 128, 128).clone()
    yy, xx = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    texture = torch.zeros_like(ramp)
    texture[:, 3:] = 0.2 * (-1.0) ** (xx + yy)
    answer, shares = {}, {}
    for kind in ("plain", "blur", "blur_pool"):
        torch.manual_seed(0)
        D = define_D(in_channels=6, width=8, layers=3, norm="batch", **({kind: True} if kind != "plain" else {}))
        with torch.no_grad():
            D.eval()
            answer[kind] = (D(ramp + texture) - D(ramp)).abs().mean().item()
            D.train()
        x = torch.zeros(1, 6, 128, 128, requires_grad=True)
        D(x + ramp).mean().backward()
        shares[kind] = {p: _grid_share(x.grad[0, 3:].mean(0).double().numpy(), p) for p in (2, 4, 8)}
    assert answer["blur_pool"] > 1e4 * answer["blur"] and answer["blur_pool"] > 0.1 * answer["plain"], answer
    assert shares["blur_pool"][2] < shares["plain"][2] / 30 and shares["blur_pool"][4] < shares["plain"][4] / 10
    assert shares["blur_pool"][8] < shares["plain"][8] / 2, shares
    plain = define_D(width=8)
    pooled = define_D(width=8, blur_pool=True)
    pooled.load_state_dict(plain.state_dict())  # the same keys and shapes: a plain run's D fine-tunes into it
    with pytest.raises(ValueError, match="one at most"):
        define_D(width=8, blur=True, blur_pool=True)
