"""Triton side of the paged KV layout (see :mod:`.paged_layout`): the page/offset of a token position, and
the kernel that stores a step's new K/V into the pages, in place.

The store kernel runs one program per new token; it reads its sequence from ``token_seq`` (built on the
device with ``searchsorted``), so nothing is read on the host and a launch can be captured in a CUDA graph.
In a sliding-window ring only each sequence's last ``RING * PAGE_SIZE`` tokens are stored: older tokens
of a chunk longer than the ring would alias their ring places. Never autotuned: it writes in place.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.interface import window_pages


@triton.jit
def kv_page_offset(pos, seq, slot, page_table, stride_pt_seq, mask, PAGE_SIZE: tl.constexpr, RING: tl.constexpr):
    """Physical page (int64) and in-page offset of positions ``pos`` of sequence ``seq`` in state ``slot``."""
    logical = pos // PAGE_SIZE
    if RING > 0:
        page = slot * RING + logical % RING
    else:
        page = tl.load(page_table + seq * stride_pt_seq + logical, mask=mask, other=0).to(tl.int64)
    return page, pos % PAGE_SIZE


@triton.jit
def _store_kv_kernel(
    k,
    v,
    kv_cache,
    token_seq,
    cu_seqlen,
    input_pos,
    slot_idx,
    page_table,
    stride_k_t,
    stride_k_h,
    stride_v_t,
    stride_v_h,
    stride_c_page,
    stride_c_kv,
    stride_c_head,
    stride_c_tok,
    stride_pt_seq,
    NUM_KV_HEADS: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    RING: tl.constexpr,
):
    i_t = tl.program_id(0).to(tl.int64)
    seq = tl.load(token_seq + i_t)
    start = tl.load(cu_seqlen + seq).to(tl.int64)
    end = tl.load(cu_seqlen + seq + 1).to(tl.int64)
    if RING > 0:
        if i_t < end - RING * PAGE_SIZE:
            return
    pos = tl.load(input_pos + seq).to(tl.int64) + i_t - start
    slot = tl.load(slot_idx + seq).to(tl.int64)
    page, offset = kv_page_offset(pos, seq, slot, page_table, stride_pt_seq, True, PAGE_SIZE, RING)

    o_h = tl.arange(0, BLOCK_H)
    o_d = tl.arange(0, BLOCK_D)
    mask = (o_h < NUM_KV_HEADS)[:, None] & (o_d < HEAD_DIM)[None, :]
    b_k = tl.load(k + i_t * stride_k_t + o_h[:, None] * stride_k_h + o_d[None, :], mask=mask)
    b_v = tl.load(v + i_t * stride_v_t + o_h[:, None] * stride_v_h + o_d[None, :], mask=mask)
    p_cache = kv_cache + page * stride_c_page + offset * stride_c_tok + o_h[:, None] * stride_c_head + o_d[None, :]
    tl.store(p_cache, b_k.to(kv_cache.dtype.element_ty), mask=mask)
    tl.store(p_cache + stride_c_kv, b_v.to(kv_cache.dtype.element_ty), mask=mask)


def token_sequences(cu_seqlen: torch.Tensor, num_seqs: int, num_tokens: int) -> torch.Tensor:
    """``[num_tokens]`` int64: the sequence each flat token belongs to (on the device, no host sync)."""
    tokens = torch.arange(num_tokens, device=cu_seqlen.device, dtype=cu_seqlen.dtype)
    return torch.searchsorted(cu_seqlen[1 : num_seqs + 1].contiguous(), tokens, right=True)


def store_kv_(
    k: torch.Tensor,
    v: torch.Tensor,
    kv_cache: torch.Tensor,
    cu_seqlen: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    num_seqs: int,
    sliding_window: int,
) -> None:
    """Store the new ``k, v [T, hkv, d]`` (rows with unit stride on ``d``) of ``num_seqs`` sequences into
    ``kv_cache [num_pages, 2, hkv, page_size, d]``, in place."""
    num_tokens, num_kv_heads, head_dim = k.shape
    if num_tokens == 0:
        return
    page_size = kv_cache.shape[3]
    ring = window_pages(sliding_window, page_size) if sliding_window > 0 else 0
    token_seq = token_sequences(cu_seqlen, num_seqs, num_tokens)
    _store_kv_kernel[(num_tokens,)](
        k,
        v,
        kv_cache,
        token_seq,
        cu_seqlen,
        input_pos,
        slot_idx,
        page_table,
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        kv_cache.stride(0),
        kv_cache.stride(1),
        kv_cache.stride(2),
        kv_cache.stride(3),
        page_table.stride(0),
        NUM_KV_HEADS=num_kv_heads,
        HEAD_DIM=head_dim,
        BLOCK_H=triton.next_power_of_2(num_kv_heads),
        BLOCK_D=triton.next_power_of_2(head_dim),
        PAGE_SIZE=page_size,
        RING=ring,
    )
