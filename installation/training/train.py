"""The pix2pix trainer: U-Net generator, PatchGAN discriminator, GAN + 100 x L1, Adam 2e-4 beta1 0.5.

One process on a CPU or a GPU, or several through torchrun (DDP and a DistributedSampler; NCCL on
GPUs, gloo on CPUs):

    installation train DATASET --out runs/NAME
    torchrun --standalone --nproc_per_node=2 -m installation.training.train_cli DATASET --out runs/NAME

Each epoch writes runs/NAME/latest.pt (one self-describing dict: architecture, chain, config,
optimizer and scaler state, losses, RNG state), a line of losses.jsonl and samples/epoch_NNNN.png.
Ctrl-C stops at the end of the current step and saves; `--resume runs/NAME/latest.pt` goes on from
exactly there.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from installation.core.errors import UserError
from installation.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    dataset_fingerprint,
    load_checkpoint,
    load_weights,
    same_data,
    save_atomic,
    versions,
)
from installation.training.config import TrainConfig
from installation.training.distributed import any_rank, leave, setup_distributed, unwrap
from installation.training.evaluate import sample_grid, sample_spike, val_l1
from installation.training.networks import NORMS, UPSAMPLES, count_parameters, default_depth, define_D, define_G
from installation.training.pace import Pace
from installation.training.readers import TargetReader
from installation.training.rundata import open_run_data
from installation.training.spike_loss import spike_penalty

log = logging.getLogger("installation.train")

LOSS_KEYS = ("G_GAN", "G_L1", "D_real", "D_fake")
SPIKE_KEY = "G_spike"  # the spike penalty (before its weight), reported only by runs that use it
SPIKE_FROM_KEY = "G_spike_from"  # the same on the pictures of spike_from


# ---- the trainer -------------------------------------------------------------------------------


class Stop:
    """Ctrl-C (SIGINT) or SIGTERM asks for a stop at the end of the current step; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step to save a checkpoint (Ctrl-C again to quit at once)", file=sys.stderr)

    def __enter__(self) -> Stop:
        if _main_thread():  # Python lets only the main thread set handlers
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class Interrupted(KeyboardInterrupt):
    """Training stopped on request; the checkpoint at `path` holds every step done."""

    def __init__(self, path: Path, epoch: int, step: int) -> None:
        super().__init__(f"saved {path} at epoch {epoch} step {step}")
        self.path, self.epoch, self.step = path, epoch, step


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: dict[str, Any] | None = None, command: str = "",
                 on_step: Callable[[Trainer], None] | None = None) -> None:
        self.cfg, self.command, self.on_step = cfg, command, on_step
        if cfg.spike_from and not cfg.spike_weight:  # before the pictures are read: a setting's mistake
            raise UserError("spike_from without the spike penalty", key="spike_from",
                            expected="--set spike_weight=W beside it (the penalty its pictures pay)")
        self.dist, self.device = setup_distributed(cfg.device)
        self.out = Path(cfg.out)
        self.amp = cfg.amp and self.device.type == "cuda"
        d = open_run_data(cfg, resume, cfg.progress and self.dist.main)
        self.data, self.val, self.fixed, self.chain = d.data, d.val, d.fixed, d.chain
        self.size, self.dataset_meta, self.info = d.size, d.meta, d.info
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP checks they agree)
        self.arch = resume["arch"] if resume else {
            "kind": "unet", "in_channels": 3, "out_channels": 3, "width": cfg.width,
            "depth": self._depth(), "norm": cfg.norm, "dropout": cfg.dropout, "upsample": cfg.upsample}
        if self.arch.get("upsample", "transpose") not in UPSAMPLES:
            raise UserError(f"upsample {self.arch['upsample']!r}", key="upsample", expected=" or ".join(UPSAMPLES))
        if self.arch.get("norm", "batch") not in NORMS:
            raise UserError(f"norm {self.arch['norm']!r}", key="norm", expected=" or ".join(NORMS))
        pool = {"blur_pool": True} if cfg.d_blur_pool else {}
        # A branch (train --from) may turn the BlurPool order on: the same weights, key for key
        self.disc = {**resume["disc"], **pool} if resume else {
            "in_channels": 6, "width": cfg.d_width, "layers": cfg.d_layers, "norm": cfg.norm, "blur": cfg.d_blur,
            **pool}
        if self.disc.get("blur") and self.disc.get("blur_pool"):
            raise UserError("d_blur and d_blur_pool both set", key="d_blur_pool",
                            expected="one of them at most: two ways of anti-aliasing the PatchGAN")
        self.G = define_G(**self.arch).to(self.device)
        self.D = define_D(**self.disc).to(self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.epoch, self.step, self.global_step, self.seconds = 0, 0, 0, 0.0
        self.history: list[dict[str, Any]] = []
        self.sums: dict[str, float] = dict.fromkeys((*LOSS_KEYS, "n"), 0.0)
        self.fingerprint = dataset_fingerprint(self.dataset_meta.get("path", ""))
        self.runs: list[dict[str, Any]] = []  # one entry per process that trained this run: its share
        self._clock = time.monotonic()  # wall time is added to self.seconds from here at each save
        if resume:
            same_data(resume, self.fingerprint, resume.get("_path", "checkpoint"), self.dataset_meta.get("path", ""))
            self._restore(resume)
        else:
            torch.manual_seed(cfg.seed + self.dist.rank)  # dropout differs between ranks
        if self.dist.on:
            self.G = DistributedDataParallel(self.G, device_ids=[self.device.index] if self.device.type == "cuda"
                                             else None)
            self.D = DistributedDataParallel(self.D, device_ids=[self.device.index] if self.device.type == "cuda"
                                             else None)
        self.gan_loss = nn.BCEWithLogitsLoss()
        self.l1 = nn.L1Loss()
        # A ripple the penalty removes from the targets' crops can still grow on a face or a room, which the
        # targets never show the generator: these pictures show it such inputs, judged by the penalty alone.
        self.elsewhere = TargetReader(cfg.spike_from, self.chain, True, cfg.seed + 1) if cfg.spike_from else None

    # -- setup --

    def _depth(self) -> int:
        try:
            depth = self.cfg.depth or default_depth(self.size)
        except ValueError as e:
            raise UserError(str(e), key="size", expected="a power of two (256, 512), or give depth") from None
        if self.size % (2 ** depth):
            raise UserError(f"{depth} down-blocks need a size divisible by {2 ** depth}, not {self.size}",
                            key="depth")
        return depth

    def _restore(self, ckpt: dict[str, Any]) -> None:
        where = ckpt.get("_path", "checkpoint")
        load_weights(self.G, ckpt["G"], where, "this run's generator")
        load_weights(self.D, ckpt["D"], where, "this run's discriminator")
        self.opt_G.load_state_dict(ckpt["opt_G"])
        self.opt_D.load_state_dict(ckpt["opt_D"])
        if ckpt.get("scaler") and self.amp:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step = ckpt["epoch"], ckpt.get("step", 0)
        self.global_step, self.seconds = ckpt.get("global_step", 0), ckpt.get("seconds", 0.0)
        self.history = list(ckpt.get("losses", []))
        self.runs = list(ckpt.get("runs", []))
        self.sums = {**self.sums, **(ckpt.get("sums") or {})}
        rng = ckpt.get("rng", {})
        if self.dist.rank == 0 and "torch" in rng:
            torch.set_rng_state(rng["torch"].cpu())
            if self.device.type == "cuda" and rng.get("cuda") is not None:
                torch.cuda.set_rng_state(rng["cuda"].cpu())
        else:
            torch.manual_seed(self.cfg.seed + self.dist.rank + self.global_step)

    # -- checkpoints and reports --

    def checkpoint(self) -> dict[str, Any]:
        G, D = unwrap(self.G), unwrap(self.D)
        return {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "arch": self.arch, "disc": self.disc, "size": self.size, "value_range": [-1.0, 1.0],
            "chain": self.chain.to_spec(), "config": asdict(self.cfg), "dataset": self.dataset_meta,
            "command": self.command, "world_size": self.dist.world,
            "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
            "seconds": self.seconds, "sums": dict(self.sums), "losses": self.history,
            "runs": [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.runs],
            "dataset_fingerprint": self.fingerprint,
            "G": G.state_dict(), "D": D.state_dict(), "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(), "scaler": self.scaler.state_dict() if self.amp else None,
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state() if self.device.type == "cuda" else None},
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "versions": versions(),
        }

    @property
    def latest(self) -> Path:
        return self.out / "latest.pt"

    def save(self) -> None:
        """Checkpoint every step done, with the wall time spent on them (this run's share and the total)."""
        now = time.monotonic()
        self.seconds += now - self._clock
        self._clock = now
        if self.runs:
            run = self.runs[-1]
            run.update(steps=self.global_step - run["from_step"], seconds=round(now - run["_t0"], 1),
                       ended=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
        if self.dist.main:
            save_atomic(self.checkpoint(), self.latest)
        self._saved = now

    def _start_run(self) -> None:
        now = time.monotonic()
        self._clock = self._saved = now
        self.runs.append({"started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                          "from_step": self.global_step, "from_epoch": self.epoch, "steps": 0, "seconds": 0.0,
                          "_t0": now})

    def _save_due(self) -> bool:
        """A mid-epoch checkpoint is due (every save_every seconds of wall time, decided by rank 0 for all)."""
        due = bool(self.cfg.save_every) and time.monotonic() - self._saved >= self.cfg.save_every
        return any_rank(due and self.dist.main, self.dist, self.device)

    def _report(self, seconds: float) -> dict[str, Any]:
        keys = self._loss_keys()
        sums = torch.tensor([self.sums.get(k, 0.0) for k in (*keys, "n")], dtype=torch.float64)
        if self.dist.on:
            dist.all_reduce(sums)
        n = max(1.0, float(sums[-1]))
        row: dict[str, Any] = {"epoch": self.epoch + 1, **{k: float(sums[i]) / n for i, k in enumerate(keys)}}
        row["lr"] = self.opt_G.param_groups[0]["lr"]
        row["seconds"] = round(seconds, 2)
        if self.dist.main:
            v = val_l1(unwrap(self.G), self.val, self.cfg.batch_size, self.device)
            if v is not None:
                row["val_L1"] = v
            row["spike"] = round(sample_spike(unwrap(self.G), self.fixed, self.device), 2)
        return row

    def _loss_keys(self) -> tuple[str, ...]:
        if not self.cfg.spike_weight:
            return LOSS_KEYS
        return (*LOSS_KEYS, SPIKE_KEY, *((SPIKE_FROM_KEY,) if self.elsewhere is not None else ()))

    def _elsewhere_batch(self) -> torch.Tensor | None:
        """A batch of inputs made from spike_from's pictures, new crops at every step (resumes repeat them)."""
        if self.elsewhere is None:
            return None
        self.elsewhere.set_epoch(self.global_step)
        n, bs = len(self.elsewhere), self.cfg.batch_size
        first = (self.global_step * bs) % n
        batch = [self.elsewhere[(first + k) % n]["A"] for k in range(bs)]
        return torch.from_numpy(np.stack(batch)).to(self.device)

    # -- training --

    def lr_at(self, epoch: int) -> float:
        """pix2pix's 'linear' policy: constant, then down to 0 over the last `decay` of the epochs."""
        n_decay = round(self.cfg.epochs * self.cfg.decay)
        n_const = self.cfg.epochs - n_decay
        return self.cfg.lr * (1.0 - max(0, epoch + 1 - n_const) / (n_decay + 1))

    def _batches(self, epoch: int, skip: int) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches of the epoch, the first `skip` left out (a resumed epoch goes on)."""
        sampler = DistributedSampler(self.data, num_replicas=self.dist.world, rank=self.dist.rank, shuffle=True,
                                     seed=self.cfg.seed)
        sampler.set_epoch(epoch)
        self.data.set_epoch(epoch)
        order = list(sampler)
        bs = self.cfg.batch_size
        batches = [order[i:i + bs] for i in range(0, len(order), bs)]
        loader = DataLoader(self.data, batch_sampler=batches[skip:], num_workers=self.cfg.workers,
                            pin_memory=self.device.type == "cuda")
        yield from loader

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        autocast = torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp)
        other = self._elsewhere_batch()
        with autocast:
            if other is None:
                fake_B = self.G(real_A)
            else:  # one batch, so batch norm's running statistics are those of the batches it trained on
                both = self.G(torch.cat([real_A, other], 0))
                fake_B, fake_other = both[:len(real_A)], both[len(real_A):]

        # D: real pairs -> 1, fake pairs -> 0 (the fake detached: this step leaves G alone)
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        with autocast:
            pred_fake = self.D(torch.cat([real_A, fake_B.detach()], 1))
            pred_real = self.D(torch.cat([real_A, real_B], 1))
            loss_D_fake = self.gan_loss(pred_fake, torch.zeros_like(pred_fake))
            loss_D_real = self.gan_loss(pred_real, torch.ones_like(pred_real))
            loss_D = 0.5 * (loss_D_fake + loss_D_real)
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)

        # G: fool D, stay near the target. D runs unwrapped here: its weights are frozen for this step,
        # and going through DDP would wait for gradients that never come.
        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast:
            pred = unwrap(self.D)(torch.cat([real_A, fake_B], 1))
            loss_G_GAN = self.gan_loss(pred, torch.ones_like(pred))
            loss_G_L1 = self.l1(fake_B.float(), real_B)
            loss_G = self.cfg.gan_weight * loss_G_GAN + self.cfg.l1_weight * loss_G_L1
        losses = {"G_GAN": loss_G_GAN.item(), "G_L1": loss_G_L1.item(), "D_real": loss_D_real.item(),
                  "D_fake": loss_D_fake.item()}
        if self.cfg.spike_weight:
            spike = spike_penalty(fake_B)  # in float32, outside autocast: an FFT of float16 loses the peaks
            loss_G = loss_G + self.cfg.spike_weight * spike
            losses[SPIKE_KEY] = spike.item()
            if other is not None:
                spike_from = spike_penalty(fake_other)
                loss_G = loss_G + self.cfg.spike_weight * spike_from
                losses[SPIKE_FROM_KEY] = spike_from.item()
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return losses

    def fit(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        if self.dist.main:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            # losses.jsonl is rewritten from the checkpoint's history, so a resume never duplicates a line
            (self.out / "losses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in self.history))
            log.info("training %s: G %s (%.2f M parameters), D %s, %d pairs, %s%s, %d process(es)",
                     self.out, self.arch, count_parameters(unwrap(self.G)) / 1e6, self.disc, len(self.data),
                     self.device, " amp" if self.amp else "", self.dist.world)
        from installation.core.progress import progress

        pace = Pace(cfg.epochs, len(self.data))  # seconds a picture and the finish, said after every epoch
        self._start_run()
        with Stop() as stop:
            while self.epoch < cfg.epochs:
                for opt in (self.opt_G, self.opt_D):
                    for g in opt.param_groups:
                        g["lr"] = self.lr_at(self.epoch)
                t0 = time.monotonic()
                batches = self._batches(self.epoch, self.step)
                bar = progress(batches, total=max(0, self.steps_per_epoch_for(self.epoch) - self.step), unit="step",
                               desc=f"epoch {self.epoch + 1}/{cfg.epochs}", enabled=cfg.progress and self.dist.main,
                               leave=False)
                for batch in bar:
                    losses = self.train_step(batch["A"].to(self.device, non_blocking=True),
                                             batch["B"].to(self.device, non_blocking=True))
                    n = len(batch["A"])
                    for k, v in losses.items():
                        self.sums[k] = self.sums.get(k, 0.0) + v * n
                    self.sums["n"] += n
                    self.step += 1
                    self.global_step += 1
                    bar.set_postfix(L1=f"{losses['G_L1']:.3f}", D=f"{losses['D_real'] + losses['D_fake']:.2f}")
                    if self.on_step:
                        self.on_step(self)
                    if any_rank(stop.requested, self.dist, self.device):
                        self.save()
                        raise Interrupted(self.latest, self.epoch, self.step)
                    if self._save_due():
                        self.save()
                bar.close()
                elapsed = time.monotonic() - t0
                row = self._report(elapsed)
                self.history.append(row)
                self.epoch, self.step = self.epoch + 1, 0
                self.sums = dict.fromkeys((*self._loss_keys(), "n"), 0.0)
                if self.dist.main:
                    with (self.out / "losses.jsonl").open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    _write_png(self.out / "samples" / f"epoch_{self.epoch:04d}.png",
                               sample_grid(unwrap(self.G), self.fixed, self.device))
                    self.save()
                    pace.add(time.monotonic() - t0)
                    log.info("epoch %d/%d  " + "  ".join(f"{k} {row[k]:.4f}" for k in (*self._loss_keys(), "val_L1",
                                                                                        "spike")
                                                        if k in row) + "  %.1fs; %s", self.epoch, cfg.epochs, elapsed,
                             pace.line(self.epoch))
        if self.dist.main:
            plot_losses(self.history, self.out / "losses.png")
        return self.history

    def steps_per_epoch_for(self, epoch: int) -> int:
        per_rank = math.ceil(len(self.data) / self.dist.world)
        return math.ceil(per_rank / self.cfg.batch_size)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def plot_losses(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for k in ("G_L1", "val_L1"):
        if any(k in r for r in history):
            ax1.plot(epochs, [r.get(k, float("nan")) for r in history], label=k)
    ax1.set_title("L1 (pixels, [-1, 1] scale)")
    for k in ("G_GAN", "D_real", "D_fake"):
        ax2.plot(epochs, [r[k] for r in history], label=k)
    ax2.set_title("adversarial")
    for ax in (ax1, ax2):
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def train(cfg: TrainConfig, resume: str | Path | None = None, command: str = "",
          on_step: Callable[[Trainer], None] | None = None) -> Trainer:
    """Train (or go on training) and return the trainer; raises Interrupted after a requested stop."""
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        ckpt["_path"] = str(resume)
        command = command or ckpt.get("command", "")
    trainer = Trainer(cfg, ckpt, command, on_step)
    together = False
    try:
        trainer.fit()
        together = True
    except Interrupted:
        together = True
        raise
    finally:
        leave(together)
    return trainer
