"""Shared helpers of the benchmarks: GPU timing, the copy-bandwidth floor, JSON + table output."""
from __future__ import annotations

import json
import os
import platform
import statistics
from typing import Callable, Dict, List, Sequence

import torch


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU ({platform.processor() or platform.machine()})"


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
    """Write ``{meta, rows}`` as JSON to ``out_dir/<name>.json`` and print a Markdown table of ``columns``."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"\n## {name} — {meta.get('device', device_name())}")
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
