"""What CPU this is: its name, the instruction sets that decide its speed and its 8-bit arithmetic, and the
cores this process may use. Every figure the runtime writes (bench, --stats, a model card's timings, the
int8 verdict) names the CPU through this module, so a reader can tell whether it applies to their machine.

The flags matter beyond speed: ONNX Runtime's 8-bit convolutions take another code path with VNNI
(AVX512-VNNI or AVX-VNNI) than with AVX2 alone, and the pictures of one int8 model differ between the two.
A virtual machine may name its processor vaguely ("AMD EPYC"): family, model and stepping tell it apart.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

# /proc/cpuinfo's names of the flags that matter here, and what a reader calls them
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI"}


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: not Linux)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # one processor is enough: they are alike
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_cores() -> int:
    """Cores this process may run on (its affinity: `taskset` narrows it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_flags() -> list[str]:
    """Those of FLAGS' keys the CPU has, in FLAGS' order."""
    have = set(_cpuinfo().get("flags", "").split())
    return [f for f in FLAGS if f in have]


def cpu_model() -> str:
    """The processor's name as the system gives it, with family/model/stepping where there are."""
    info = _cpuinfo()
    name = info.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in info:
        name += f" (family {info['cpu family']} model {info.get('model', '?')} stepping {info.get('stepping', '?')})"
    return name


def cpu_name() -> str:
    """One line for a figure: 'AMD EPYC (family 25 model 1 stepping 1), AVX2, no AVX-512, no VNNI'."""
    flags = set(cpu_flags())
    words = [FLAGS["avx2"] if "avx2" in flags else "no AVX2",
             FLAGS["avx512f"] if "avx512f" in flags else "no AVX-512"]
    vnni = [FLAGS[f] for f in ("avx512_vnni", "avx_vnni") if f in flags]
    words.append(" ".join(vnni) if vnni else "no VNNI")
    return ", ".join([cpu_model(), *words])


def cpu_record() -> dict[str, Any]:
    """The CPU as a JSON/TOML table: name (cpu_name's line), model, flags, cores."""
    return {"name": cpu_name(), "model": cpu_model(), "flags": cpu_flags(), "cores": cpu_cores(),
            "machine": platform.machine()}
