"""Paged attention at the 1B / 3B shapes: decode latency per layer (batch 1 and 64 over a long cached
context, CUDA graph) beside a torch SDPA baseline and the memory-bandwidth bound (KV bytes read ÷ the
copy bandwidth measured in the same run), and the prefill of 8k tokens beside torch SDPA (flash backend).
Run on the GPU: ``python -m bench.ops_attention``."""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from bench.common import copy_bandwidth_gbs, device_name, time_cuda, write_results

SHAPES = {"1b": dict(h=16, hkv=4, d=128), "3b": dict(h=24, hkv=8, d=128)}


def _decode_case(model: str, batch: int, context: int, page_size: int):
    """A decode step of ``batch`` sequences each holding ``context`` cached tokens in shuffled pages."""
    from trtllm_flash.ops.metadata import build_metadata

    s = SHAPES[model]
    pages_each = -(-(context + 1) // page_size)
    num_pages = batch * pages_each + 1
    perm = (torch.randperm(num_pages - 1) + 1).tolist()
    rows = [perm[i * pages_each : (i + 1) * pages_each] for i in range(batch)]
    meta = build_metadata([1] * batch, [context] * batch, list(range(batch)), rows, device="cuda")
    cache = torch.randn(num_pages, 2, s["hkv"], page_size, s["d"], device="cuda", dtype=torch.bfloat16)
    q = torch.randn(batch, 1, s["h"], s["d"], device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(batch, 1, s["hkv"], s["d"], device="cuda", dtype=torch.bfloat16) for _ in range(2))
    return q, k, v, meta, cache


def _sdpa_over_pages(q, cache, page_table, context: int):
    """Baseline: gather each sequence's pages into dense K/V, then torch SDPA (GQA) over ``context + 1`` keys."""
    b, _, h, d = q.shape
    hkv, page_size = cache.shape[2], cache.shape[3]
    pages = cache[page_table.long()]  # [b, pages, 2, hkv, page, d]
    kv = pages.permute(0, 2, 3, 1, 4, 5).reshape(b, 2, hkv, -1, d)[:, :, :, : context + 1]
    return F.scaled_dot_product_attention(q.transpose(1, 2), kv[:, 0], kv[:, 1], enable_gqa=True)


def bench_decode(model: str, bandwidth: float, context: int, page_size: int):
    import trtllm_flash.ops.attention  # noqa: F401

    s = SHAPES[model]
    rows = []
    for batch in (1, 64):
        q, k, v, m, cache = _decode_case(model, batch, context, page_size)
        args = (q, k, v, m.batch_info_host, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, cache, s["d"] ** -0.5, 0)
        ms = time_cuda(lambda: torch.ops.trtllm_flash.cached_attention(*args), graph=True)
        ref_ms = time_cuda(lambda: _sdpa_over_pages(q, cache, m.page_table, context))
        moved = batch * ((context + 1) * 2 * s["hkv"] * s["d"] * 2 + 2 * s["h"] * s["d"] * 2)
        bound = moved / (bandwidth * 1e9) * 1e3
        rows.append(
            dict(op="decode", model=model, batch=batch, context=context, ms=ms, ref_ms=ref_ms, bound_ms=bound, pct_of_bound=100 * bound / ms)
        )
    return rows


def bench_prefill(model: str, tokens: int, page_size: int):
    import trtllm_flash.ops.attention  # noqa: F401
    from trtllm_flash.ops.metadata import build_metadata

    s = SHAPES[model]
    q = torch.randn(1, tokens, s["h"], s["d"], device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(1, tokens, s["hkv"], s["d"], device="cuda", dtype=torch.bfloat16) for _ in range(2))
    pages = -(-tokens // page_size)
    m = build_metadata([tokens], [0], [0], [list(range(1, pages + 1))], device="cuda")
    cache = torch.zeros(pages + 1, 2, s["hkv"], page_size, s["d"], device="cuda", dtype=torch.bfloat16)
    args = (q, k, v, m.batch_info_host, m.cu_seqlen, m.input_pos, m.slot_idx, m.page_table, cache, s["d"] ** -0.5, 0)
    ms = time_cuda(lambda: torch.ops.trtllm_flash.cached_attention(*args))
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))
    ref_ms = time_cuda(lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=True))
    flops = 2 * tokens * tokens * s["h"] * s["d"]  # causal: half of 4·s²·h·d
    return [dict(op="prefill", model=model, batch=1, context=tokens, ms=ms, ref_ms=ref_ms, tflops=flops / (ms * 1e-3) / 1e12, tokens_per_s=tokens / ms * 1e3)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--context", type=int, default=8192, help="cached tokens per sequence in the decode cases")
    parser.add_argument("--prefill-tokens", type=int, default=8192)
    parser.add_argument("--page-size", type=int, default=64)
    parser.add_argument("--out-dir", default="bench/results")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.ops_attention needs a CUDA GPU")
    bandwidth = copy_bandwidth_gbs()
    rows = []
    for model in args.models:
        rows += bench_decode(model, bandwidth, args.context, args.page_size)
        rows += bench_prefill(model, args.prefill_tokens, args.page_size)
    columns = ["op", "model", "batch", "context", "ms", "ref_ms", "bound_ms", "pct_of_bound", "tflops", "tokens_per_s"]
    meta = {"device": device_name(), "copy_bandwidth_gbs": bandwidth, "page_size": args.page_size}
    write_results("ops_attention", rows, columns, meta, args.out_dir)


if __name__ == "__main__":
    main()
