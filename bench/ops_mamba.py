"""Mamba2 SSM and causal-conv ops at the 1B / 3B shapes: decode latency per layer (batch 1 and 64, CUDA
graph) beside the bandwidth bound and the torch reference, and 8k-token prefill time (SSD beside fla's
chunk_simple_gla for the same work). Run on the GPU: ``python -m bench.ops_mamba``."""
from __future__ import annotations

import argparse

import torch

from bench.common import copy_bandwidth_gbs, device_name, time_cuda, write_results

SHAPES = {"1b": dict(h=64, p=64, n=128, c=4096 + 256), "3b": dict(h=96, p=64, n=128, c=6400)}
K = 4


def _meta(num_seqs: int, seq_len: int, decode: bool):
    from trtllm_flash.ops.metadata import build_metadata

    pos = [7 if decode else 0] * num_seqs
    return build_metadata([seq_len] * num_seqs, pos, list(range(num_seqs)), device="cuda")


def bench_ssm(model: str, bandwidth: float, prefill_tokens: int):
    import trtllm_flash.ops.mamba  # noqa: F401
    from trtllm_flash.ops.mamba.reference import ssm_step

    s = SHAPES[model]
    h, p, n = s["h"], s["p"], s["n"]
    A = -torch.rand(h, device="cuda") - 0.5
    D, dt_bias = torch.randn(h, device="cuda"), torch.randn(h, device="cuda")
    rows = []
    for batch in (1, 64):
        x = torch.randn(batch, 1, h, p, device="cuda", dtype=torch.bfloat16)
        dt = torch.randn(batch, 1, h, device="cuda", dtype=torch.bfloat16)
        B = torch.randn(batch, 1, 1, n, device="cuda", dtype=torch.bfloat16)
        state = torch.zeros(batch + 1, h, p, n, device="cuda")
        m = _meta(batch, 1, decode=True)
        args = (x, dt, A, B, B, D, dt_bias, m.batch_info_host, m.cu_seqlen, m.slot_idx, m.use_initial_states, state, 0.0, float("inf"), 128)
        ms = time_cuda(lambda: torch.ops.trtllm_flash.cached_ssm(*args), graph=True)
        ref_ms = time_cuda(lambda: ssm_step(state[:batch], x[:, 0], dt[:, 0], A, B[:, 0], B[:, 0], D, dt_bias, 0.0, float("inf")))
        moved = batch * (2 * h * p * n * 4 + 2 * h * p * 2 + h * 2 + 2 * n * 2)
        bound = moved / (bandwidth * 1e9) * 1e3
        rows.append(dict(op="ssm decode", model=model, batch=batch, ms=ms, ref_ms=ref_ms, bound_ms=bound, pct_of_bound=100 * bound / ms))
    x = torch.randn(1, prefill_tokens, h, p, device="cuda", dtype=torch.bfloat16)
    dt = torch.randn(1, prefill_tokens, h, device="cuda", dtype=torch.bfloat16)
    B = torch.randn(1, prefill_tokens, 1, n, device="cuda", dtype=torch.bfloat16)
    ms = time_cuda(lambda: torch.ops.trtllm_flash.ssm(x, dt, A, B, B, D, dt_bias, 0.0, float("inf"), 128))
    row = dict(op="ssm prefill", model=model, batch=prefill_tokens, ms=ms, tokens_per_s=prefill_tokens / ms * 1e3)
    from fla.ops.simple_gla import chunk_simple_gla

    q = B.expand(1, prefill_tokens, h, n).contiguous()
    g = torch.randn(1, prefill_tokens, h, device="cuda").sigmoid().neg()
    row["fla_chunk_simple_gla_ms"] = time_cuda(lambda: chunk_simple_gla(q, q, x, g, scale=1.0, output_final_state=True))
    rows.append(row)
    return rows


def bench_conv(model: str, bandwidth: float, prefill_tokens: int):
    import trtllm_flash.ops.causal_conv  # noqa: F401
    from trtllm_flash.ops.causal_conv.reference import conv_step

    c = SHAPES[model]["c"]
    weight = torch.randn(c, 1, K, device="cuda", dtype=torch.bfloat16)
    bias = torch.randn(c, device="cuda", dtype=torch.bfloat16)
    rows = []
    for batch in (1, 64):
        x = torch.randn(batch, 1, c, device="cuda", dtype=torch.bfloat16)
        state = torch.zeros(batch + 1, c, K - 1, device="cuda", dtype=torch.bfloat16)
        m = _meta(batch, 1, decode=True)
        args = (x, weight, bias, m.batch_info_host, m.cu_seqlen, m.slot_idx, m.use_initial_states, state, "silu")
        ms = time_cuda(lambda: torch.ops.trtllm_flash.cached_causal_conv1d(*args), graph=True)
        ref_ms = time_cuda(lambda: conv_step(state[:batch], x[:, 0], weight, bias, "silu"))
        moved = batch * (2 * c * (K - 1) * 2 + 2 * c * 2)
        bound = moved / (bandwidth * 1e9) * 1e3
        rows.append(dict(op="conv decode", model=model, batch=batch, ms=ms, ref_ms=ref_ms, bound_ms=bound, pct_of_bound=100 * bound / ms))
    x = torch.randn(1, prefill_tokens, c, device="cuda", dtype=torch.bfloat16)
    ms = time_cuda(lambda: torch.ops.trtllm_flash.causal_conv1d(x, weight, bias, "silu"))
    moved = 2 * prefill_tokens * c * 2
    bound = moved / (bandwidth * 1e9) * 1e3
    rows.append(dict(op="conv prefill", model=model, batch=prefill_tokens, ms=ms, bound_ms=bound, pct_of_bound=100 * bound / ms, tokens_per_s=prefill_tokens / ms * 1e3))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--prefill-tokens", type=int, default=8192)
    parser.add_argument("--out-dir", default="bench/results")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.ops_mamba needs a CUDA GPU")
    bandwidth = copy_bandwidth_gbs()
    rows = []
    for model in args.models:
        rows += bench_ssm(model, bandwidth, args.prefill_tokens)
        rows += bench_conv(model, bandwidth, args.prefill_tokens)
    columns = ["op", "model", "batch", "ms", "ref_ms", "bound_ms", "pct_of_bound", "tokens_per_s", "fla_chunk_simple_gla_ms"]
    write_results("ops_mamba", rows, columns, {"device": device_name(), "copy_bandwidth_gbs": bandwidth}, args.out_dir)


if __name__ == "__main__":
    main()
