"""Delta-rule op benchmark (GPU): decode latency per layer beside the state-bandwidth bound and the torch
reference, and 8k-token prefill of our cached op beside fla's chunk kernel alone (our wrapper's cost).

    python -m bench.ops_delta_rule [--models 1b 3b] [--batches 1 64] [--prefill-tokens 8192]
"""
from __future__ import annotations

import argparse
from typing import Dict, List

import torch

from bench.common import copy_bandwidth_gbs, device_name, time_cuda, write_results

HEADS = {"1b": 16, "3b": 24}
HEAD_DIM = 128
SCALE = HEAD_DIM**-0.5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(HEADS), default=sorted(HEADS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--prefill-tokens", type=int, default=8192)
    parser.add_argument("--prefill-seqs", type=int, default=4, help="sequences the prefill tokens are split into")
    parser.add_argument("--out-dir", default="bench/results")
    return parser.parse_args(argv)


def _inputs(b: int, s: int, h: int):
    q = torch.nn.functional.normalize(torch.randn(b, s, h, HEAD_DIM, device="cuda"), dim=-1).bfloat16()
    k = torch.nn.functional.normalize(torch.randn(b, s, h, HEAD_DIM, device="cuda"), dim=-1).bfloat16()
    v = torch.randn(b, s, h, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    beta = torch.rand(b, s, h, device="cuda", dtype=torch.bfloat16)
    return q, k, v, beta


def decode_row(model: str, batch: int, bandwidth_gbs: float) -> Dict:
    from trtllm_flash.ops.delta_rule import delta_rule_step

    h = HEADS[model]
    q, k, v, beta = _inputs(batch, 1, h)
    pool = torch.zeros(batch + 1, h, HEAD_DIM, HEAD_DIM, device="cuda")
    slots = torch.randperm(batch, device="cuda")
    batch_info = torch.tensor([0, 0, batch], dtype=torch.int32)
    cu = torch.arange(batch + 1, dtype=torch.int32, device="cuda")
    use_init = torch.ones(batch, dtype=torch.bool, device="cuda")

    def ours():
        torch.ops.trtllm_flash.cached_delta_rule(q, k, v, beta, batch_info, cu, slots, use_init, pool, SCALE)

    def torch_reference():
        _, new = delta_rule_step(pool[slots], q[:, 0], k[:, 0], v[:, 0], beta[:, 0], SCALE)
        pool.index_copy_(0, slots, new)

    state_bytes = 2 * batch * h * HEAD_DIM * HEAD_DIM * 4  # read + write of fp32 state
    bound_us = state_bytes / (bandwidth_gbs * 1e9) * 1e6
    ours_us = time_cuda(ours, graph=True) * 1e3
    return {
        "model": model,
        "batch": batch,
        "ours_us": ours_us,
        "torch_ref_us": time_cuda(torch_reference, graph=True) * 1e3,
        "bound_us": bound_us,
        "pct_of_bound": 100 * bound_us / ours_us,
        "state_MB": state_bytes / 1e6,
    }


def prefill_row(model: str, tokens: int, num_seqs: int) -> Dict:
    from fla.ops.delta_rule import chunk_delta_rule

    h = HEADS[model]
    q, k, v, beta = _inputs(1, tokens, h)
    bounds = [tokens * i // num_seqs for i in range(num_seqs + 1)]
    cu = torch.tensor(bounds, dtype=torch.int32, device="cuda")
    cu_long = cu.long()
    slots = torch.arange(num_seqs, device="cuda")
    pool = torch.randn(num_seqs + 1, h, HEAD_DIM, HEAD_DIM, device="cuda") * 0.01
    use_init = torch.ones(num_seqs, dtype=torch.bool, device="cuda")
    batch_info = torch.tensor([num_seqs, tokens, 0], dtype=torch.int32)
    h0 = pool[:num_seqs].clone()

    def ours():
        torch.ops.trtllm_flash.cached_delta_rule(q, k, v, beta, batch_info, cu, slots, use_init, pool, SCALE)

    def fla_alone():
        chunk_delta_rule(q, k, v, beta, scale=SCALE, initial_state=h0, output_final_state=True, cu_seqlens=cu_long)

    ours_ms, fla_ms = time_cuda(ours), time_cuda(fla_alone)
    return {
        "model": model,
        "tokens": tokens,
        "seqs": num_seqs,
        "ours_ms": ours_ms,
        "fla_chunk_ms": fla_ms,
        "ours_over_fla": ours_ms / fla_ms,
        "Mtok_per_s": tokens / ours_ms / 1e3,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.ops_delta_rule needs a CUDA GPU")
    import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)

    bandwidth = copy_bandwidth_gbs()
    meta = {"device": device_name(), "copy_bandwidth_GBs": bandwidth, "head_dim": HEAD_DIM, "dtype": "bfloat16"}
    decode: List[Dict] = [decode_row(m, b, bandwidth) for m in args.models for b in args.batches]
    write_results(
        "ops_delta_rule_decode", decode,
        ["model", "batch", "ours_us", "torch_ref_us", "bound_us", "pct_of_bound", "state_MB"], meta, args.out_dir,
    )
    prefill = [prefill_row(m, args.prefill_tokens, args.prefill_seqs) for m in args.models]
    write_results(
        "ops_delta_rule_prefill", prefill,
        ["model", "tokens", "seqs", "ours_ms", "fla_chunk_ms", "ours_over_fla", "Mtok_per_s"], meta, args.out_dir,
    )


if __name__ == "__main__":
    main()
