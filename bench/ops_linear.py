"""Batch-1 projections: ``trtllm_flash.linear`` (Triton GEMV) beside cuBLAS (``F.linear``) and the
weight-streaming floor, at every projection shape of the 1B / 3B decode step, and their per-step totals.

Each shape's weight is copied until the copies pass 256 MB and one CUDA graph calls every copy once, so
no weight is read from L2 (in a decode step every weight is read once, from HBM). The floor is the
weight bytes over the device-to-device copy bandwidth measured in the same run.

    python -m bench.ops_linear
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.common import copy_bandwidth_gbs, device_name, time_cuda, write_results

#: model -> projection -> ((N, K), count per decode step) with the graph's fused projections
SHAPES = {
    "1b": {"deltanet_qkvb": ((6160, 2048), 4), "attention_qkv": ((3072, 2048), 2), "o_proj": ((2048, 2048), 6),
           "mamba_in_proj": ((8512, 2048), 6), "mamba_out_proj": ((2048, 4096), 6), "ffn_gate_up": ((12288, 2048), 12),
           "ffn_down": ((2048, 6144), 12), "lm_head": ((131072, 2048), 1)},
    "3b": {"deltanet_qkvb": ((9240, 3072), 6), "attention_qkv": ((5120, 3072), 3), "o_proj": ((3072, 3072), 9),
           "mamba_in_proj": ((12640, 3072), 9), "mamba_out_proj": ((3072, 6144), 9), "ffn_gate_up": ((18432, 3072), 18),
           "ffn_down": ((3072, 9216), 18), "lm_head": ((131072, 3072), 1)},
}
MIN_BYTES = 256 << 20


def per_call_us(fn_per_weight, weights) -> float:
    """Microseconds per call when one CUDA graph calls ``fn_per_weight`` on every weight copy once."""
    ms = time_cuda(lambda: [fn_per_weight(w) for w in weights], warmup=2, iters=15, graph=True, graph_repeats=1)
    return ms * 1e3 / len(weights)


def main() -> None:
    import trtllm_flash.ops.linear  # noqa: F401

    bandwidth = copy_bandwidth_gbs() * 1e9
    rows = []
    for model, shapes in SHAPES.items():
        totals = {"cublas_us": 0.0, "gemv_us": 0.0, "floor_us": 0.0}
        for name, ((n, k), count) in shapes.items():
            nbytes = n * k * 2
            weights = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(-(-MIN_BYTES // nbytes))]
            x = torch.randn(1, 1, k, device="cuda", dtype=torch.bfloat16)
            torch.ops.trtllm_flash.linear(x, weights[0])  # autotune outside the graph
            row = dict(model=model, projection=name, N=n, K=k, per_step=count,
                       cublas_us=per_call_us(lambda w: F.linear(x, w), weights),
                       gemv_us=per_call_us(lambda w: torch.ops.trtllm_flash.linear(x, w), weights),
                       floor_us=nbytes / bandwidth * 1e6)
            row["gemv_tb_s"] = nbytes / row["gemv_us"] / 1e6
            row["x_faster"] = row["cublas_us"] / row["gemv_us"]
            rows.append(row)
            for key in totals:
                totals[key] += count * row[key]
            del weights
            torch.cuda.empty_cache()
        rows.append(dict(model=model, projection="per decode step", **totals, x_faster=totals["cublas_us"] / totals["gemv_us"]))
    columns = ["model", "projection", "N", "K", "per_step", "cublas_us", "gemv_us", "floor_us", "gemv_tb_s", "x_faster"]
    write_results("ops_linear", rows, columns, dict(device=device_name(), copy_gb_s=bandwidth / 1e9))


if __name__ == "__main__":
    main()
