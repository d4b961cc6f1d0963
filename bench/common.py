"""Shared helpers of the benchmarks: GPU timing, the copy-bandwidth floor, run provenance, JSON + table output.

Every result file is ``bench/results/<gpu>/<name>.json`` (``<gpu>`` e.g. ``h200``, ``h100``, ``cpu``) and
holds ``{"meta": ..., "rows": ...}``; ``meta`` always carries :func:`run_meta` (commit, GPU, driver, host
CPU, torch / triton / CUDA versions, PDL state, command line, UTC time) so every README figure traces to
a file and a commit.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

import torch

#: set by a run from a copy of the tree without ``.git`` (the device machine): the commit it was copied from
COMMIT_ENV = "TRTLLM_FLASH_COMMIT"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()})"


def gpu_slug(name: Optional[str] = None) -> str:
    """Short folder name of the device: ``"NVIDIA H200"`` -> ``h200``, ``"NVIDIA H100 80GB HBM3"`` -> ``h100``, CPU -> ``cpu``."""
    name = name if name is not None else device_name()
    if name.startswith("CPU"):
        return "cpu"
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w and w.upper() not in ("NVIDIA", "TESLA", "GEFORCE")]
    return words[0].lower() if words else "gpu"


def _command(args: List[str]) -> Optional[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _host_cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def run_meta() -> Dict[str, object]:
    """Where and with what a result was measured (stored in every result JSON)."""
    import triton

    from trtllm_flash.ops import pdl

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = os.environ.get(COMMIT_ENV) or _command(["git", "-C", root, "rev-parse", "HEAD"])
    dirty = _command(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"])
    on_cuda = torch.cuda.is_available()
    return {
        "device": device_name(),
        "commit": commit,
        "tree_modified": None if os.environ.get(COMMIT_ENV) else bool(dirty),
        "driver": _command(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]) if on_cuda else None,
        "host_cpu": _host_cpu(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "pdl": bool(on_cuda and pdl.enabled(torch.empty(0, device="cuda"))),
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def spread(values: Sequence[float]) -> Dict[str, float]:
    """Median, min, max and (max - min) / median in per cent of repeated measurements."""
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values), "spread_pct": 100 * (max(values) - min(values)) / med, "runs": len(values)}


def time_cuda(fn: Callable[[], object], warmup: int = 3, iters: int = 20, graph: bool = False, graph_repeats: int = 16) -> float:
    """Median milliseconds of one ``fn()`` on the current CUDA stream.

    ``graph=True`` captures ``graph_repeats`` back-to-back calls in one CUDA graph and divides a replay's
    time by that count: the cost of ``fn`` as one piece of a larger graphed step, without the fixed
    cost (~10 us) of launching a graph, which would swamp a microsecond kernel."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    if graph:
        g = torch.cuda.CUDAGraph()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
        with torch.cuda.graph(g):
            for _ in range(graph_repeats):
                fn()
        run = g.replay
    else:
        run = fn
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times) / (graph_repeats if graph else 1)


def copy_bandwidth_gbs(num_bytes: int = 1 << 30) -> float:
    """Device-to-device copy bandwidth in GB/s, counting bytes read plus bytes written."""
    src = torch.empty(num_bytes // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = time_cuda(lambda: dst.copy_(src), warmup=3, iters=10)
    return 2 * src.numel() / (ms * 1e-3) / 1e9


def write_results(name: str, rows: List[Dict], columns: Sequence[str], meta: Dict, out_dir: str = "bench/results") -> str:
    """Write ``{meta, rows}`` as JSON to ``out_dir/<gpu>/<name>.json`` (``meta`` extended by :func:`run_meta`)
    and print a Markdown table of ``columns``."""
    meta = {**run_meta(), **meta}
    folder = os.path.join(out_dir, gpu_slug(meta["device"]))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"\n## {name} — {meta['device']} (commit {str(meta['commit'])[:10]}, PDL {'on' if meta['pdl'] else 'off'})")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    print(f"(JSON: {path})")
    return path


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
