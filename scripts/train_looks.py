#!/usr/bin/env python3
"""Train, resume and export the shipped looks, each from one themed set of licensed photographs.

    python scripts/fetch_photos.py --out /work/look-runs/photos   # the photographs and their licences
    python scripts/train_looks.py train water      # /work/look-runs/water: goes on from its newest checkpoint
    python scripts/train_looks.py export water     # models/default (the main look) with the full card

Runs live outside the checkout (--runs, or $LOOK_RUNS, default /work/look-runs), so a run of hours goes on
in the next session from where it stopped: `train LOOK` resumes from RUNS/LOOK/latest.pt, which the trainer
rewrites atomically every few minutes of wall time (TrainConfig.save_every) and at every epoch's end, so a
killed run loses minutes at most. A checkpoint whose run differs from the look as written here (chain,
width, recipe, photographs) is refused with what differs; without one the run starts over, saying so.

Every look is trained the Learning to See way, from target pictures alone: each input is made on the
fly from a random zoom (100-130 %), crop and flip of a photograph by the look's own chain, the chain
the show then runs on the camera. The decoder upsamples by bilinear resize + 3x3 conv (no
checkerboard).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The chains were chosen by looking at what each does to a portrait, a person with a tripod, a room
# with a motorbike and a photograph of the set (docs/looks.md), then by what the texture recipe made of
# them (docs/texture.md): a grey picture blurred by 2-3 px keeps a body's shape and every area's tone, and
# leaves the network the fine scales to fill with the set's texture. Grey at 1/12 size (water's first chain)
# gave it so little that it drew ribbed, rainbow-fringed bands along every contour; grey at 1/4 carries the
# regrown blocks' period-4 lattice into the picture (spike 65 on the room); Canny edges (leaves' first) leave
# most of the input black, where the network grew a period-4 ripple (spike 180). Four grey levels give petals
# areas. The shipped models of the first issues were 10 epochs of the pix2pix recipe (GAN + 100 x L1); these
# entries make the texture recipe's runs (GAN + 10 x L1, 70x70 PatchGAN; water and leaves with the spike
# penalty), 2,700 steps for water (shipped: its 972-step checkpoint), 4,320 for leaves (shipped: a branch at
# 2,889), 5,500 for bloom.
LOOKS: dict[str, dict[str, Any]] = {
    "water": {  # the main look: the default show's model, so its folder is models/default
        "folder": "default", "set": "water", "width": 16, "epochs": 50, "repeat": 24, "recipe": "texture-spike",
        "description": "water and sky at dusk: a soft grey picture of the room (3 px blur) repainted in the "
                       "blues and pinks of nine lake, sea and sky photographs",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "grey"}, {"step": "blur", "blur": 3.0},
                  {"step": "lerp_output", "output_lerp": 0.6}],
    },
    "leaves": {
        # The canny chain's long run (2026-12-06, 5,400 steps) grew a period-4 ripple where the edges leave the
        # input black (spike 180 on the room) even at spike weight 1e-3: a grey picture gives every area a say.
        # This run grew one too on the held-back pictures (71 on the room at 2,520 steps); models/leaves is a
        # branch of it from there (`installation train --from`, spike weight 1e-2, spike_from = the water and
        # bloom sets' photographs in one folder), 2,889 steps: the card's branched_from and reproduce
        "set": "leaves", "width": 12, "epochs": 160, "repeat": 15, "recipe": "texture-spike",
        "options": {"spike_weight": 0.001},
        "description": "green: a soft grey picture of the room (2 px blur) grown over with the leaves, grass, moss "
                       "and forest of seven photographs",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "grey"}, {"step": "blur", "blur": 2.0},
                  {"step": "lerp_output", "output_lerp": 0.5}],
    },
    "bloom": {
        "set": "bloom", "width": 12, "epochs": 110, "repeat": 40, "recipe": "texture",
        "description": "petals and fallen leaves: the room in four grey levels, repainted in the warm colours of "
                       "five macro photographs of flowers and autumn leaves",
        "chain": [{"step": "flip", "flip": True}, {"step": "crop", "crop": "centre"}, {"step": "resize"},
                  {"step": "grey"}, {"step": "blur", "blur": 2.0}, {"step": "posterize", "posterize": 4},
                  {"step": "lerp_output", "output_lerp": 0.5}],
    },
}
D_WIDTH = 16
UPSAMPLE = "bilinear"
# One training thread per run: two OpenMP threads spin-waiting on a shared, busy core were slower
# (scripts/train_default_model.py measured it); looks can train side by side instead.
THREADS = 1
HOLDOUT = "grace_hopper"  # the portrait the card's spike figure is measured on (see installation.training.quality)


def runs_root() -> Path:
    """Where long runs keep their checkpoints: outside the checkout, so they outlive a fresh work tree."""
    return Path(os.environ.get("LOOK_RUNS", "/work/look-runs"))


def chain_toml(spec: list[dict[str, Any]]) -> str:
    lines = []
    for step in spec:
        lines.append("[[preprocess]]")
        for k, v in step.items():
            lines.append(f"{k} = {json.dumps(v)}")
        lines.append("")
    return "\n".join(lines)


def run(cmd: list[str], threads: int = 0) -> int:
    print("+ " + shlex.join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def settings(look: str) -> dict[str, Any]:
    """The TrainConfig fields a look's run is made with (beside its chain and photographs)."""
    spec = LOOKS[look]
    from installation.training.train_cli import RECIPES

    return {**RECIPES[spec.get("recipe", "pix2pix")], "width": spec["width"], "d_width": D_WIDTH,
            "repeat": spec["repeat"], "upsample": UPSAMPLE, "size": 256, **spec.get("options", {})}


def differences(look: str, ckpt: dict[str, Any]) -> list[str]:
    """What of the look as written here differs from the run its checkpoint holds: 'key: run X, look Y'."""
    from installation.vision.preprocess import Chain

    spec = LOOKS[look]
    from installation.training.train import TrainConfig

    cfg = asdict(TrainConfig.from_dict(ckpt["config"]))  # a key the run predates has its default
    out = [f"{k}: run {cfg[k]!r}, look {v!r}" for k, v in settings(look).items() if k != "size" and cfg[k] != v]
    if ckpt["size"] != 256:
        out.append(f"size: run {ckpt['size']}, look 256")
    wanted = Chain.from_spec(spec["chain"], 256).to_spec()
    if ckpt["chain"] != wanted:
        out.append(f"chain: run {ckpt['chain']}, look {wanted}")
    if Path(cfg.get("dataset", "")).name != spec["set"]:
        out.append(f"photographs: run {cfg.get('dataset')!r}, look the set {spec['set']!r}")
    return out


def train(look: str, photos: Path, runs: Path, threads: int) -> int:
    """Go on with the look's run in RUNS/LOOK from its newest checkpoint, or start it; 2 when the checkpoint's
    run is not the look's as written here (another chain, width, recipe or set of photographs)."""
    from installation.core.errors import UserError
    from installation.training.checkpoint import load_checkpoint

    spec = LOOKS[look]
    run_dir = runs / look
    latest = run_dir / "latest.pt"
    data = photos / "sets" / spec["set"]
    if not data.is_dir():
        print(f"train_looks: no photographs at {data}; first: python scripts/fetch_photos.py --out {photos}",
              file=sys.stderr)
        return 2
    py = [sys.executable, "-m", "installation.training.cli"]  # the same commands as `installation`
    if latest.is_file():
        try:
            ckpt = load_checkpoint(latest)
        except UserError as e:
            print(f"train_looks: {e}", file=sys.stderr)
            return 2
        diff = differences(look, ckpt)
        if diff:
            print(f"train_looks: {latest}: this run is not the {look} look as scripts/train_looks.py now makes it ("
                  + "; ".join(diff) + "): refused, so as not to mix two runs. Move the folder away to start over, "
                  "or give another --runs", file=sys.stderr)
            return 2
        done = f"epoch {ckpt['epoch']} step {ckpt.get('step', 0)}, {ckpt.get('global_step', 0)} steps, " \
               f"{ckpt.get('seconds', 0) / 3600:.2f} h"
        print(f"train_looks: {look}: resuming {latest} ({done} so far)", flush=True)
        # --epochs: a run resumed before its learning rate starts to fall (half-way) may be lengthened, and
        # is then the same run as a fresh one of that length (same crops, same dropout: the RNG is saved).
        # The photographs are named again: the trainer checks they are the ones the run learnt from.
        # --out: the run goes on in this folder even when it was made elsewhere and moved here
        return run([*py, "train", str(data), "--resume", str(latest), "--out", str(run_dir),
                    "--epochs", str(spec["epochs"]), "--no-progress"], threads)
    if run_dir.exists():
        print(f"train_looks: {look}: no checkpoint in {run_dir}: starting the run over", flush=True)
    else:
        print(f"train_looks: {look}: no run folder {run_dir} (first run, or it was removed): starting the run",
              flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    chain_file = run_dir / "chain.toml"
    chain_file.write_text(chain_toml(spec["chain"]))
    sets = [f"d_width={D_WIDTH}", f"repeat={spec['repeat']}", f"upsample={UPSAMPLE}",
            *(f"{k}={v}" for k, v in spec.get("options", {}).items())]
    return run([*py, "train", str(data), "--from-targets", "--chain-file", str(chain_file), "--out", str(run_dir),
                "--epochs", str(spec["epochs"]), "--width", str(spec["width"]), "--size", "256",
                "--recipe", spec.get("recipe", "pix2pix"), *[a for kv in sets for a in ("--set", kv)],
                "--no-progress"], threads)


def start(look: str, runs: Path, args: argparse.Namespace) -> None:
    """`train LOOK` in a process of its own at the lowest priority, detached from this one (it outlives the
    shell that started it), appending to RUNS/LOOK.log."""
    runs.mkdir(parents=True, exist_ok=True)
    cmd = ["nice", "-n", "19", sys.executable, str(Path(__file__).resolve()), "train", look, "--runs", str(runs),
           "--threads", str(args.threads), *(["--photos", str(args.photos)] if args.photos else [])]
    log = runs / f"{look}.log"
    with open(log, "a") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    # A new session is a new scheduling autogroup (Linux, kernel.sched_autogroup_enabled), and autogroups
    # share the CPU equally whatever their processes' nice: three "niced" runs took three quarters of two
    # cores from a show (3.4 fps against 22-30). The group's own nice is what yields to the show.
    with contextlib.suppress(OSError):  # no autogroups (another OS, an older kernel): nice alone applies
        Path(f"/proc/{proc.pid}/autogroup").write_text("19")
    print(f"{look}: started, process {proc.pid}, log {log}")


def status(look: str, runs: Path) -> None:
    """Where the look's run stands, from its checkpoint."""
    import torch

    latest = runs / look / "latest.pt"
    if not latest.is_file():
        print(f"{look}: no checkpoint at {latest}")
        return
    c = torch.load(latest, map_location="cpu", weights_only=True)
    last = (c.get("losses") or [{}])[-1]
    print(f"{look}: epoch {c['epoch']}/{c['config']['epochs']} (+{c.get('step', 0)} steps), "
          f"{c.get('global_step', 0)} steps, {c.get('seconds', 0) / 3600:.2f} h over {len(c.get('runs', []))} "
          f"run(s); last epoch's L1 {last.get('G_L1', float('nan')):.3f}, spike {last.get('spike', '-')}; "
          f"saved {c.get('created', '?')}")


BAR_SHARE, BAR_SPIKE, BAR_FLICKER = 0.5, 10.0, 1.0  # issue 25's bar: half the photographs' detail, no ripple


def measure(look: str, runs: Path, photos: Path) -> None:
    """The run's detail, spike and flicker figures now (scripts/look_detail.py on a copy of its checkpoint, which
    the trainer may rewrite meanwhile), appended to RUNS/LOOK/detail.jsonl: how texture grows with the steps. A
    checkpoint that reaches the bar is kept as RUNS/LOOK/passed/step-N.pt, a candidate for export."""
    import shutil

    latest = runs / look / "latest.pt"
    if not latest.is_file():
        print(f"{look}: no checkpoint at {latest}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "latest.pt"
        shutil.copyfile(latest, copy)
        res = subprocess.run([sys.executable, str(ROOT / "scripts" / "look_detail.py"), str(copy), "--json",
                              "--photos", str(photos / "sets" / LOOKS[look]["set"]),
                              "--stills", str(runs / look / "detail.png")], capture_output=True, text=True)
        if res.returncode:
            print(f"{look}: {res.stderr.strip()}", file=sys.stderr)
            return
        row = json.loads(res.stdout.strip().splitlines()[-1])
        row["look"] = look
        # a GAN's figures move from one checkpoint to the next: keep each that reaches the bar (docs/texture.md)
        if row["share"] >= BAR_SHARE and row["spike"] <= BAR_SPIKE and row["flicker"] < BAR_FLICKER:
            kept = runs / look / "passed" / f"step-{row['global_step']:06d}.pt"
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(copy, kept)
            row["kept"] = str(kept)
            # the issue's own reading: through the show's renderer and recorder, which soften a little more
            shown = subprocess.run([sys.executable, str(ROOT / "scripts" / "look_through_show.py"), str(kept),
                                    "--json", "--photos", str(photos / "sets" / LOOKS[look]["set"])],
                                   capture_output=True, text=True)
            if shown.returncode == 0:
                row["through_show"] = json.loads(shown.stdout.strip().splitlines()[-1])
    with open(runs / look / "detail.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{look}: step {row['global_step']}: detail on the portrait {row['grace_hopper']['detail']} "
          f"({100 * row['share']:.0f} % of {row['photographs_median']}), spike {row['spike']}, "
          f"flicker {row['flicker']}" + (f"; kept as {row['kept']}" if "kept" in row else "")
          + (f"; through the show {100 * row['through_show']['share']:.0f} %, spike {row['through_show']['spike']}"
             if "through_show" in row else ""))


def bench(model_dir: Path, threads: int = 2, n: int = 200) -> float:
    """Median ms for one 256x256 frame through ONNX Runtime on `threads` CPU threads."""
    import numpy as np

    os.environ["INSTALLATION_ORT_THREADS"] = str(threads)
    from installation.inference.models import load_model

    model = load_model(model_dir, providers="cpu")
    h, w = model.card.size
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    for _ in range(20):
        model.infer(img)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.infer(img)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def export(look: str, photos: Path, runs: Path, models: Path, checkpoint: Path | None = None) -> None:
    """The look's model folder from its run's newest checkpoint, or `checkpoint` (one `measure` kept)."""
    from installation.core.cpu import cpu_name
    from installation.inference.models import read_card
    from installation.training.quality import model_spike_figure

    spec = LOOKS[look]
    out = models / spec.get("folder", look)
    run_dir = runs / look
    ckpt = checkpoint or run_dir / "latest.pt"
    py = [sys.executable, "-m", "installation.training.cli"]
    if run([*py, "export", str(ckpt), "--out", str(out), "--name", look]):
        raise SystemExit(2)
    record = json.loads((photos / "sets" / f"{spec['set']}.json").read_text())
    ms = bench(out)
    spikes = {name: round(v, 2) for name, v in model_spike_figure(out).items()}
    card = read_card(out / "model.toml")
    card.description = spec["description"]
    pictures = record["pictures"]
    card.provenance = {
        "data": f"{len(pictures)} photographs, set '{spec['set']}' ({record['title']}) from Debian packages: "
                + "; ".join(f"{p['id']} by {p['author']} ({p['licence']})" for p in pictures),
        "photographs": [{"id": p["id"], "author": p["author"], "licence": p["licence"], "package": p["package"],
                         "package_version": p["version"], "file": p["file"], "size": p["size"]}
                        for p in pictures],
        # a list, not a table: the card writer leaves keys bare, and "plasma/Grey" is no bare TOML key
        "data_left_out": [{"id": k, "why": v} for k, v in record["left_out"].items()],
        "fetch": "python scripts/fetch_photos.py",
        # a checkpoint `measure` kept on the bar is not the run's last: the card says which one was shipped
        "reproduce": f"python scripts/fetch_photos.py && python scripts/train_looks.py train {look} && "
                     + (f"python scripts/train_looks.py measure {look} && python scripts/train_looks.py export "
                        f"{look} --checkpoint {ckpt}" if checkpoint
                        else f"python scripts/train_looks.py export {look}"),
        **card.provenance,
        "inference_ms_256_cpu_2_threads": round(ms, 2),
        "inference_machine": f"{cpu_name()}, {os.cpu_count()} cores (a shared host), ONNX Runtime "
                             "CPUExecutionProvider, 2 threads",
        "spike_figure": spikes,
        "spike_figure_on": "held-back photographs no set uses: grace_hopper (matplotlib sample data), camera and "
                           "motorcycle_left (scikit-image); installation.training.quality.spike_figure",
    }
    # the last epoch's samples' checkerboard figure rides in the losses row; on the card it has its own key
    final = card.provenance.get("final_losses", {})
    if "spike" in final:
        card.provenance["final_losses"] = {k: v for k, v in final.items() if k != "spike"}
        card.provenance["final_sample_spike_figure"] = final["spike"]
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    _lengthened(card.provenance, state)
    _branched(card.provenance, look, ckpt)
    _totals(card.provenance, state)
    card.save(out)
    size_mb = (out / "model.onnx").stat().st_size / 1e6
    print(f"{look}: {out} ({size_mb:.1f} MB), {ms:.2f} ms a 256x256 frame on 2 CPU threads, spike figure {spikes}")


def _totals(prov: dict[str, Any], ckpt: dict[str, Any]) -> None:
    """The whole run, over every process that trained it (sessions end, runs resume): beside the export's epochs,
    training_steps, training_runs and training_seconds, the hours and each session's share."""
    runs = ckpt.get("runs", [])
    prov["training_hours"] = round(ckpt.get("seconds", 0.0) / 3600, 2)
    if runs:
        prov["training_sessions"] = [{k: r[k] for k in ("started", "ended", "steps", "seconds") if k in r}
                                     for r in runs]


def _branched(prov: dict[str, Any], look: str, checkpoint: Path) -> None:
    """A checkpoint of a branch (`installation train --from`, another loss setting taken up mid-run): the card
    names the run it left, at which step, and reproduces the two in turn."""
    import torch

    cmd = shlex.split(prov.get("train_command", ""))
    if "--from" not in cmd:
        return
    start = Path(cmd[cmd.index("--from") + 1])
    if not start.is_file():  # the card still has the branch's command; the run it left is not here to read
        return
    left = torch.load(start, map_location="cpu", weights_only=True)
    step = left.get("global_step", 0)
    first, _ = _with_epochs(left.get("command", ""), left["config"]["epochs"])  # lengthened, as _lengthened says
    prov["branched_from"] = {"checkpoint": str(start), "step": step, "command": first}
    prov["reproduce"] = (f"python scripts/fetch_photos.py && python scripts/train_looks.py train {look} (stopped at "
                         f"{step} steps, its latest.pt copied to {start}) && {prov['train_command']} && "
                         f"python scripts/train_looks.py export {look} --checkpoint {checkpoint}")


def _with_epochs(command: str, epochs: int) -> tuple[str, str | None]:
    """A training command with `--epochs` as the run's total, and the count it was started with where that
    differs (a run lengthened on resume keeps its first command in the checkpoint)."""
    import re

    m = re.search(r"--epochs (\d+)", command)
    if m and int(m[1]) != epochs:
        return command.replace(m[0], f"--epochs {epochs}"), m[1]
    return command, None


def _lengthened(prov: dict[str, Any], ckpt: dict[str, Any]) -> None:
    """A run lengthened on resume keeps its first command in the checkpoint; the card gives the command
    that makes the same run in one go, and says what happened."""
    epochs = ckpt["config"]["epochs"]
    prov["train_command"], started = _with_epochs(prov.get("train_command", ""), epochs)
    if started:
        prov["train_history"] = (f"started with --epochs {started}, lengthened to {epochs} on resume before the "
                                 "learning rate began to fall (half-way): the same run as a fresh one of that "
                                 "length, since the checkpoint keeps the crops' seed and the RNG state")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=("train", "start", "status", "measure", "export", "chain"),
                    help="train (in this process, one look after another), start (each look in a process of its "
                         "own, niced and detached, logging to RUNS/LOOK.log), status (where each run is), measure "
                         "(scripts/look_detail.py on the newest checkpoint, a line appended to RUNS/LOOK/detail.jsonl)")
    ap.add_argument("looks", nargs="*", default=list(LOOKS), help=f"of {', '.join(LOOKS)} (default: all)")
    ap.add_argument("--runs", type=Path, default=None,
                    help="the looks' run folders, one per look, outside the checkout so they outlive it "
                         "(default $LOOK_RUNS, else /work/look-runs)")
    ap.add_argument("--photos", type=Path, default=None,
                    help="scripts/fetch_photos.py's folder (default RUNS/photos)")
    ap.add_argument("--models", type=Path, default=Path("models"))
    ap.add_argument("--threads", type=int, default=THREADS, help="CPU threads for training (OMP_NUM_THREADS)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="export: this checkpoint of the run (one `measure` kept in RUNS/LOOK/passed/) rather "
                         "than its newest")
    args = ap.parse_args()
    runs = args.runs or runs_root()
    photos = args.photos or runs / "photos"
    for look in args.looks:
        if look not in LOOKS:
            ap.error(f"unknown look {look!r}; known: {', '.join(LOOKS)}")
        if args.action == "train":
            rc = train(look, photos, runs, args.threads)
            if rc:
                return rc
        elif args.action == "start":
            start(look, runs, args)
        elif args.action == "status":
            status(look, runs)
        elif args.action == "measure":
            measure(look, runs, photos)
        elif args.action == "export":
            export(look, photos, runs, args.models, args.checkpoint)
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
                f.write(chain_toml(LOOKS[look]["chain"]))
            print(f.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
