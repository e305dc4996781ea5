"""The trainer's place in a torchrun job: this process's rank and the world's size (`Dist`), joining the
process group and picking this rank's device (`setup_distributed`), a network without its DDP wrapper
(`unwrap`), a flag raised on any rank seen by all (`any_rank`) and leaving the group (`leave`). One
process alone is world 1, rank 0, and joins nothing."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from installation.core.errors import UserError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def setup_distributed(device_pref: str) -> tuple[Dist, torch.device]:
    """Join torchrun's process group when launched by it (WORLD_SIZE > 1) and pick this rank's device."""
    d = Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
             int(os.environ.get("LOCAL_RANK", 0)))
    cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    if device_pref not in ("auto", "cuda", "cpu"):
        raise UserError(f"unknown device {device_pref!r}", key="device", expected="auto, cuda or cpu")
    if device_pref == "cuda" and not torch.cuda.is_available():
        raise UserError("no CUDA device here", key="device", expected="--device cpu or auto")
    device = torch.device("cuda", d.local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if d.on and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if d.on and not cuda:  # share the cores between the processes rather than oversubscribe them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    return d, device


def unwrap(net: nn.Module) -> nn.Module:
    return net.module if isinstance(net, DistributedDataParallel) else net


def any_rank(flag: bool, d: Dist, device: torch.device) -> bool:
    """Whether `flag` is set on any rank, on every rank: a stop one rank hears (its Ctrl-C) must end all
    of them at the same step, or the others would wait in their next all-reduce for ever."""
    if not d.on:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def leave(together: bool) -> None:
    """Leave the process group. `together` (every rank got here at the same step: the run ended or a stop
    was agreed by `any_rank`) waits for the others first: a rank that tore gloo down while rank 0 was still
    writing its last checkpoint died of SIGABRT about one run in twenty. After a fault on one rank the
    others may never arrive, so that path leaves alone."""
    if not dist.is_initialized():
        return
    if together:
        dist.barrier()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()
