"""The bench's report, apart from its runs: what machine and which library versions a result came
from (`device_info`, `versions`), and the picture of a report (`plot`: the latency histogram and the
per-stage costs of each run)."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from installation.core.cpu import cpu_cores, cpu_flags, cpu_name


def device_info() -> dict[str, Any]:
    """The machine a report came from: the CPU named with the flags that decide its speed (core/cpu.py),
    its cores, and the GPU where torch sees one."""
    info: dict[str, Any] = {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": cpu_cores(),
                            "machine": platform.machine(), "gpu": None}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def versions() -> dict[str, str | None]:
    import moderngl
    import onnxruntime

    out: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__,
                                  "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
                                  "moderngl": moderngl.__version__, "torch": None}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {k: v for k, v in report["runs"].items() if v}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, r in runs.items():
        lat = r.get("latency_samples_ms") or []
        if lat:
            ax1.hist(lat, bins=50, alpha=0.5, label=f"{name}: p50 {r['latency_ms']['p50']:.1f} "
                     f"p95 {r['latency_ms']['p95']:.1f} ms")
    ax1.set_xlabel("capture -> present latency (ms)")
    ax1.set_ylabel("frames")
    ax1.legend(fontsize=8)
    ax1.set_title("latency")
    stages = sorted({s for r in runs.values() for s in r["stage_ms"]})
    width = 0.8 / max(len(runs), 1)
    for i, (name, r) in enumerate(runs.items()):
        p50 = [r["stage_ms"].get(s, {}).get("p50", 0.0) for s in stages]
        p95 = [r["stage_ms"].get(s, {}).get("p95", 0.0) for s in stages]
        xs = np.arange(len(stages)) + i * width
        ax2.bar(xs, p50, width, label=f"{name} p50")
        ax2.scatter(xs, p95, marker="_", s=200, color="k")
    ax2.set_xticks(np.arange(len(stages)) + width * (len(runs) - 1) / 2, stages, rotation=20)
    ax2.set_ylabel("ms per frame (bar p50, tick p95)")
    ax2.legend(fontsize=8)
    ratio = report.get("ratio_pipelined_to_naive")
    ax2.set_title("per-stage cost" + (f"; pipelined/naive {ratio:.2f}x" if ratio else ""))
    dev = report["device"]
    fig.suptitle(f"{report['settings']['model']} on {dev['gpu'] or dev['cpu']} ({dev['cores']} cores): "
                 + ", ".join(f"{k} {v['fps']:.1f} fps" for k, v in runs.items()), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
