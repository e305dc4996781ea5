"""Generators from the well-known pytorch pix2pix code (junyanz/pytorch-CycleGAN-and-pix2pix).

Its checkpoints are bare state dicts (`latest_net_G.pth`). Its U-Net nests one
UnetSkipConnectionBlock inside the next (the outermost's submodule at index 1, every other's at 3),
so a key spells its level by the path down to it:

    model.model.0.weight                  level 0 (outermost): down conv; .3 its up conv (with bias)
    model.model.1.model.1.weight          level 1: down conv, .2 its norm, .5 up conv, .6 its norm
    model.model.1.model.3.model.1.weight  level 2, and each further level adds `3.model.`
    ...                                   innermost: down conv .1, up conv .3, its norm .4

`convert_state_dict` maps those onto our flat UnetGenerator; its ResNet keys load unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from installation.core.errors import UserError

# The architecture names that code uses, as our define_G kwargs (size is the U-Net's input side).
ARCHES: dict[str, dict[str, Any]] = {
    "unet_256": {"kind": "unet", "depth": 8},
    "unet_128": {"kind": "unet", "depth": 7},
    "resnet_9blocks": {"kind": "resnet", "blocks": 9},
    "resnet_6blocks": {"kind": "resnet", "blocks": 6},
}

_UNET_KEY = re.compile(r"^model\.model\.(?:1\.model\.((?:3\.model\.)*))?(\d+)\.(.+)$")
_RESNET_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")


def _unet_place(key: str) -> tuple[int | None, int, str]:
    """(level, index in that level's Sequential, the rest) of a pix2pix U-Net key; level None if not one."""
    m = _UNET_KEY.match(key)
    if not m:
        return None, -1, key
    level = 0 if m.group(1) is None else 1 + m.group(1).count("3.model.")
    return level, int(m.group(2)), m.group(3)


def looks_like_pix2pix(state: dict[str, Any]) -> bool:
    return "model.model.0.weight" in state or ("model.1.weight" in state and
                                               any(_RESNET_BLOCK.match(k) for k in state))


def guess_arch(state: dict[str, Any], file: Path) -> str:
    """The pix2pix architecture name a state dict was saved from, read off its keys and shapes."""
    if "model.model.0.weight" in state:
        depth = 1 + max(level for k in state if (level := _unet_place(k)[0]) is not None)
        for name, a in ARCHES.items():
            if a["kind"] == "unet" and a["depth"] == depth:
                return name
        return f"unet_{2 ** depth}"
    blocks = {int(m.group(1)) for k in state if (m := _RESNET_BLOCK.match(k))}
    if "model.1.weight" in state and blocks:
        return f"resnet_{len(blocks)}blocks"
    raise UserError("not a generator of the pytorch pix2pix code", file=file,
                    expected="a state dict with keys like model.model.0.weight (unet) or "
                             "model.10.conv_block.1.weight (resnet)")


def arch_kwargs(name: str, state: dict[str, Any], file: Path) -> tuple[dict[str, Any], int]:
    """(define_G kwargs, input size) for a named architecture, with width, channels, norm and
    dropout read off the weights (pix2pix's batch norm drops conv biases; its instance norm keeps them)."""
    m = re.fullmatch(r"unet_(\d+)|resnet_(\d+)blocks", name)
    if not m:
        raise UserError(f"unknown pix2pix architecture {name!r}", file=file,
                        expected="unet_256, unet_128, unet_<2^n> or resnet_<n>blocks")
    guessed = guess_arch(state, file)
    if guessed != name:
        raise UserError(f"the checkpoint's keys are those of {guessed}, not {name}", file=file,
                        expected=f"a {name} generator (or leave --arch out to use the guess)")
    if m.group(1):
        size = int(m.group(1))
        first, last = state["model.model.0.weight"], state["model.model.3.weight"]
        norm = "instance" if "model.model.1.model.1.bias" in state else "batch"
        return ({"kind": "unet", "in_channels": first.shape[1], "out_channels": last.shape[1],
                 "width": first.shape[0], "depth": size.bit_length() - 1, "norm": norm, "dropout": True}, size)
    first = state["model.1.weight"]
    norm = "instance" if "model.1.bias" in state else "batch"
    head = max(int(k.split(".")[1]) for k in state if k.startswith("model.") and k.split(".")[1].isdigit())
    # With dropout a block's second conv sits at index 6, without at 5.
    dropout = any(k.endswith("conv_block.6.weight") and state[k].dim() == 4 for k in state)
    return ({"kind": "resnet", "in_channels": first.shape[1], "out_channels": state[f"model.{head}.weight"].shape[0],
             "width": first.shape[0], "blocks": int(m.group(2)), "norm": norm, "dropout": dropout}, 256)


def convert_state_dict(state: dict[str, torch.Tensor], arch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """pix2pix keys -> our generator's keys (the identity for ResNets)."""
    if arch["kind"] != "unet":
        return dict(state)
    depth = arch["depth"]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        level, index, rest = _unet_place(key)
        if level is None:
            raise KeyError(key)
        if level == 0:
            place = {0: "down.0.conv", 3: "up.0.conv"}
        elif level == depth - 1:
            place = {1: f"down.{level}.conv", 3: f"up.{level}.conv", 4: f"up.{level}.norm"}
        else:
            place = {1: f"down.{level}.conv", 2: f"down.{level}.norm", 5: f"up.{level}.conv",
                     6: f"up.{level}.norm"}
        if index not in place:
            raise KeyError(key)
        out[f"{place[index]}.{rest}"] = value
    return out
