"""Cached op ``torch.ops.trtllm_flash.cached_attention`` over the flattened batch (interface.py).

``q [1, T, h, d]`` or ``[B, 1, h, d]``, ``k, v [.., hkv, d]``, the metadata ``batch_info_host, cu_seqlen,
input_pos, slot_idx, page_table``, the cache ``kv_cache [num_pages, 2, hkv, page_size, d]`` (k's dtype,
read and written in place; layout in :mod:`.paged_layout`) and ``scale, sliding_window``. Returns ``out``
of q's shape and dtype.

Sequence ``i`` brings tokens ``cu_seqlen[i] .. cu_seqlen[i+1]`` at positions ``input_pos[i]`` onward; they
attend to the cached prefix (positions ``< input_pos[i]``) and, causally, to themselves, within the window
when ``sliding_window > 0``; then their K/V are stored.

CPU: pure torch per sequence (gather the prefix, dense fp32 softmax), validated. CUDA: the Triton prefill
kernel (prefix read before any store), the store kernel, then the split-K decode kernels; only
``batch_info_host`` (a CPU tensor) is read on the host, so a decode step can be captured in a CUDA graph.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.attention.paged_layout import kv_locations, read_kv, write_kv_
from trtllm_flash.ops.attention.reference import masked_attention
from trtllm_flash.ops.attention.triton_decode import paged_decode
from trtllm_flash.ops.attention.triton_paging import store_kv_
from trtllm_flash.ops.attention.triton_prefill import paged_prefill
from trtllm_flash.ops.attention.validation import check_cached_inputs
from trtllm_flash.ops.interface import window_pages
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::cached_attention", mutates_args=("kv_cache",))
def cached_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    kv_cache: torch.Tensor,
    scale: float,
    sliding_window: int,
) -> torch.Tensor:
    check_cached_inputs(q, k, v, batch_info_host, cu_seqlen, input_pos, slot_idx, page_table, kv_cache, scale, sliding_window)
    shape = q.shape
    q, k, v = (t.reshape(-1, *t.shape[2:]) for t in (q, k, v))
    num_prefill, _, num_decode = (int(x) for x in batch_info_host.tolist())
    page_size = kv_cache.shape[3]
    # a chunk longer than the ring stores only its newest ring-full of tokens (older ones would alias)
    keep = window_pages(sliding_window, page_size) * page_size if sliding_window > 0 else None
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    bounds = cu_seqlen.tolist()
    for i in range(num_prefill + num_decode):
        start, end, p0, slot = bounds[i], bounds[i + 1], int(input_pos[i]), int(slot_idx[i])
        page_row = page_table[i] if sliding_window == 0 else None
        first_visible = max(0, p0 - sliding_window + 1) if sliding_window > 0 else 0
        prefix_pos = torch.arange(first_visible, p0, device=q.device)
        new_pos = torch.arange(p0, p0 + end - start, device=q.device)
        k_prefix, v_prefix = read_kv(kv_cache, *kv_locations(prefix_pos, page_row, slot, page_size, sliding_window))
        out[start:end] = masked_attention(
            q[start:end],
            torch.cat([k_prefix, k[start:end].to(kv_cache.dtype)]),
            torch.cat([v_prefix, v[start:end].to(kv_cache.dtype)]),
            new_pos,
            torch.cat([prefix_pos, new_pos]),
            scale,
            sliding_window,
        ).to(out.dtype)
        stored = slice(-keep, None) if keep else slice(None)
        write_kv_(kv_cache, *kv_locations(new_pos[stored], page_row, slot, page_size, sliding_window), k[start:end][stored], v[start:end][stored])
    return out.view(shape)


@cached_attention.register_fake
def _cached_attention_fake(q, k, v, batch_info_host, cu_seqlen, input_pos, slot_idx, page_table, kv_cache, scale, sliding_window):
    return q.new_empty(q.shape)


def cached_attention_fast(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    kv_cache: torch.Tensor,
    scale: float,
    sliding_window: int,
) -> torch.Tensor:
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    shape = q.shape
    q, k, v = (t.reshape(-1, *t.shape[2:]) for t in (q, k, v))
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    num_prefill, num_prefill_tokens, num_decode = (int(x) for x in batch_info_host.tolist())
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    longest_prefill = num_prefill_tokens - max(num_prefill - 1, 0)
    paged_prefill(
        q, k, v, out, kv_cache, cu_seqlen, input_pos, slot_idx, page_table, num_prefill, longest_prefill, scale, sliding_window
    )
    store_kv_(k, v, kv_cache, cu_seqlen, input_pos, slot_idx, page_table, num_prefill + num_decode, sliding_window)
    decode_rows = slice(num_prefill, num_prefill + num_decode)
    decode_tokens = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    paged_decode(
        q[decode_tokens],
        out[decode_tokens],
        kv_cache,
        input_pos[decode_rows],
        slot_idx[decode_rows],
        page_table[decode_rows],
        scale,
        sliding_window,
    )
    return out.view(shape)


register_fast(cached_attention, cached_attention_fast)
