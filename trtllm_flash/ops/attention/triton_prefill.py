"""Triton flash-attention prefill over a paged KV cache: causal GQA with an optional sliding window.

One program owns ``BLOCK_M`` new tokens of one prefill sequence and one query head. It folds, with an
online softmax, first the sequence's cached prefix (positions ``< input_pos``, gathered from the pages
key by key, so any page size works) and then the chunk's own keys straight from the ``k, v`` inputs. The
prefix is read before anything is stored, so a chunk longer than a sliding-window ring is still exact.

The grid is sized from host-known counts only (``num_prefill`` and an upper bound on the longest
sequence); programs past their sequence's end return at once.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.attention.triton_tile_math import EMPTY_ROW_MAX, dot_mode, mma, online_softmax_step
from trtllm_flash.ops.attention.triton_paging import kv_page_offset
from trtllm_flash.ops.interface import window_pages


@triton.jit
def _prefill_kernel(
    q,
    k,
    v,
    out,
    kv_cache,
    cu_seqlen,
    input_pos,
    slot_idx,
    page_table,
    scale_log2,
    stride_q_t,
    stride_q_h,
    stride_k_t,
    stride_k_h,
    stride_v_t,
    stride_v_h,
    stride_o_t,
    stride_o_h,
    stride_c_page,
    stride_c_kv,
    stride_c_head,
    stride_c_tok,
    stride_pt_seq,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    RING: tl.constexpr,
    WINDOW: tl.constexpr,
    DOT_MODE: tl.constexpr,
):
    i_m = tl.program_id(0)
    seq = tl.program_id(1).to(tl.int64)
    i_h = tl.program_id(2)
    start = tl.load(cu_seqlen + seq).to(tl.int64)
    n = tl.load(cu_seqlen + seq + 1).to(tl.int64) - start
    first = i_m * BLOCK_M
    if first >= n:
        return
    i_kvh = i_h // GROUP
    p0 = tl.load(input_pos + seq).to(tl.int64)
    slot = tl.load(slot_idx + seq).to(tl.int64)

    o_m = first + tl.arange(0, BLOCK_M)
    o_d = tl.arange(0, BLOCK_D)
    mask_m = o_m < n
    mask_d = o_d < HEAD_DIM
    b_q = tl.load(q + (start + o_m)[:, None] * stride_q_t + i_h * stride_q_h + o_d[None, :], mask=mask_m[:, None] & mask_d[None, :], other=0.0)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    m_i = tl.full([BLOCK_M], EMPTY_ROW_MAX, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)

    # cached prefix: positions lo .. p0-1, from the pages
    lo = 0
    if WINDOW > 0:
        lo = tl.maximum(p0 + first - WINDOW + 1, 0)
    for key0 in range(lo, p0, BLOCK_N):
        k_pos = key0 + tl.arange(0, BLOCK_N)
        mask_n = k_pos < p0
        page, offset = kv_page_offset(k_pos, seq, slot, page_table, stride_pt_seq, mask_n, PAGE_SIZE, RING)
        p_key = kv_cache + page * stride_c_page + i_kvh * stride_c_head + offset * stride_c_tok
        b_k = tl.load(p_key[:, None] + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0)
        b_v = tl.load(p_key[:, None] + stride_c_kv + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0)
        scores = mma(b_q, tl.trans(b_k), DOT_MODE) * scale_log2
        visible = mask_n[None, :]
        if WINDOW > 0:
            visible = visible & ((p0 + o_m)[:, None] - k_pos[None, :] < WINDOW)
        scores = tl.where(visible, scores, float("-inf"))
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, scores, b_v, DOT_MODE)

    # the chunk itself: its keys 0 .. first+BLOCK_M-1, from the inputs
    lo = 0
    if WINDOW > 0:
        lo = tl.maximum(first - WINDOW + 1, 0)
    hi = tl.minimum(first + BLOCK_M, n)
    for key0 in range(lo, hi, BLOCK_N):
        o_n = key0 + tl.arange(0, BLOCK_N)
        mask_n = o_n < hi
        b_k = tl.load(
            k + (start + o_n)[:, None] * stride_k_t + i_kvh * stride_k_h + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0
        )
        b_v = tl.load(
            v + (start + o_n)[:, None] * stride_v_t + i_kvh * stride_v_h + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0
        )
        scores = mma(b_q, tl.trans(b_k.to(b_q.dtype)), DOT_MODE) * scale_log2
        delta = o_m[:, None] - o_n[None, :]
        visible = mask_n[None, :] & (delta >= 0)
        if WINDOW > 0:
            visible = visible & (delta < WINDOW)
        scores = tl.where(visible, scores, float("-inf"))
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, scores, b_v.to(b_q.dtype), DOT_MODE)

    l_i = tl.where(l_i > 0, l_i, 1.0)
    b_o = acc / l_i[:, None]
    tl.store(out + (start + o_m)[:, None] * stride_o_t + i_h * stride_o_h + o_d[None, :], b_o.to(out.dtype.element_ty), mask=mask_m[:, None] & mask_d[None, :])


def paged_prefill(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    kv_cache: torch.Tensor,
    cu_seqlen: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    num_seqs: int,
    longest_seq: int,
    scale: float,
    sliding_window: int,
    block_m: int = 64,
    block_n: int = 64,
) -> None:
    """Attention of the first ``num_seqs`` sequences' tokens ``q [T, h, d]`` (keys ``k, v [T, hkv, d]``; rows
    with unit stride on ``d``) over their cached prefix and themselves, written to ``out [T, h, d]``.

    ``longest_seq`` bounds every sequence's new-token count (it sizes the grid). ``kv_cache`` is only read.
    """
    if num_seqs == 0 or longest_seq == 0:
        return
    num_heads, head_dim = q.shape[1], q.shape[2]
    page_size = kv_cache.shape[3]
    ring = window_pages(sliding_window, page_size) if sliding_window > 0 else 0
    grid = (triton.cdiv(longest_seq, block_m), num_seqs, num_heads)
    _prefill_kernel[grid](
        q,
        k,
        v,
        out,
        kv_cache,
        cu_seqlen,
        input_pos,
        slot_idx,
        page_table,
        scale * math.log2(math.e),
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        out.stride(0),
        out.stride(1),
        kv_cache.stride(0),
        kv_cache.stride(1),
        kv_cache.stride(2),
        kv_cache.stride(3),
        page_table.stride(0),
        GROUP=num_heads // k.shape[1],
        HEAD_DIM=head_dim,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        PAGE_SIZE=page_size,
        RING=ring,
        WINDOW=sliding_window,
        DOT_MODE=dot_mode(q.dtype, q.device),
    )
