"""Triton split-K flash-decoding over a paged KV cache: one new token per sequence, causal GQA with an
optional sliding window.

The step's K/V must already be stored (the decode token attends to positions ``lo .. input_pos``, all read
from the pages). Stage 1: one program per ``(sequence, kv head, split)`` runs an online softmax over its
share of the keys for all ``GROUP`` query heads of that kv head at once (the heads padded to a tile of
at least 16 rows for ``tl.dot``) and writes a normalised partial output and its log2-sum-exp. Stage 2:
one program per ``(sequence, query head)`` merges the splits. The split count is chosen on the host from
the batch shape only, and nothing is read back from the device, so a step can be captured in a CUDA graph.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.attention.triton_tile_math import EMPTY_ROW_MAX, dot_mode, mma, online_softmax_step
from trtllm_flash.ops.attention.triton_paging import kv_page_offset
from trtllm_flash.ops.interface import window_pages

MAX_SPLITS = 32


@triton.jit
def _decode_split_kernel(
    q,
    kv_cache,
    input_pos,
    slot_idx,
    page_table,
    part_out,
    part_lse,
    scale_log2,
    stride_q_t,
    stride_q_h,
    stride_c_page,
    stride_c_kv,
    stride_c_head,
    stride_c_tok,
    stride_pt_seq,
    GROUP: tl.constexpr,
    BLOCK_G: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    PAGE_SIZE: tl.constexpr,
    RING: tl.constexpr,
    WINDOW: tl.constexpr,
    DOT_MODE: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    i_kvh = tl.program_id(1)
    i_split = tl.program_id(2)
    pos = tl.load(input_pos + seq).to(tl.int64)
    slot = tl.load(slot_idx + seq).to(tl.int64)
    lo = 0
    if WINDOW > 0:
        lo = tl.maximum(pos - WINDOW + 1, 0)
    per_split = tl.cdiv(tl.cdiv(pos + 1 - lo, NUM_SPLITS), BLOCK_N) * BLOCK_N
    split_lo = lo + i_split * per_split
    split_hi = tl.minimum(split_lo + per_split, pos + 1)

    o_g = tl.arange(0, BLOCK_G)
    o_d = tl.arange(0, BLOCK_D)
    mask_g = o_g < GROUP
    mask_d = o_d < HEAD_DIM
    heads = i_kvh * GROUP + o_g
    b_q = tl.load(q + seq * stride_q_t + heads[:, None] * stride_q_h + o_d[None, :], mask=mask_g[:, None] & mask_d[None, :], other=0.0)
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)
    m_i = tl.full([BLOCK_G], EMPTY_ROW_MAX, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)
    for key0 in range(split_lo, split_hi, BLOCK_N):
        k_pos = key0 + tl.arange(0, BLOCK_N)
        mask_n = k_pos < split_hi
        page, offset = kv_page_offset(k_pos, seq, slot, page_table, stride_pt_seq, mask_n, PAGE_SIZE, RING)
        p_key = kv_cache + page * stride_c_page + i_kvh * stride_c_head + offset * stride_c_tok
        b_k = tl.load(p_key[:, None] + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0)
        b_v = tl.load(p_key[:, None] + stride_c_kv + o_d[None, :], mask=mask_n[:, None] & mask_d[None, :], other=0.0)
        scores = mma(b_q, tl.trans(b_k.to(b_q.dtype)), DOT_MODE) * scale_log2
        scores = tl.where(mask_n[None, :], scores, float("-inf"))
        acc, m_i, l_i = online_softmax_step(acc, m_i, l_i, scores, b_v.to(b_q.dtype), DOT_MODE)

    empty = l_i == 0
    b_o = acc / tl.where(empty, 1.0, l_i)[:, None]
    lse = tl.where(empty, float("-inf"), m_i + tl.log2(tl.where(empty, 1.0, l_i)))
    row = (seq * GROUP * tl.num_programs(1) + heads) * NUM_SPLITS + i_split
    tl.store(part_out + row[:, None] * HEAD_DIM + o_d[None, :], b_o, mask=mask_g[:, None] & mask_d[None, :])
    tl.store(part_lse + row, lse, mask=mask_g)


@triton.jit
def _decode_merge_kernel(
    part_out,
    part_lse,
    out,
    stride_o_t,
    stride_o_h,
    NUM_HEADS: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    NUM_SPLITS: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    seq = tl.program_id(0).to(tl.int64)
    i_h = tl.program_id(1)
    o_s = tl.arange(0, BLOCK_S)
    o_d = tl.arange(0, BLOCK_D)
    mask_s = o_s < NUM_SPLITS
    mask_d = o_d < HEAD_DIM
    rows = (seq * NUM_HEADS + i_h) * NUM_SPLITS + o_s
    lse = tl.load(part_lse + rows, mask=mask_s, other=float("-inf"))
    weight = tl.exp2(lse - tl.max(lse, axis=0))
    parts = tl.load(part_out + rows[:, None] * HEAD_DIM + o_d[None, :], mask=mask_s[:, None] & mask_d[None, :], other=0.0)
    b_o = tl.sum(parts * weight[:, None], axis=0) / tl.sum(weight, axis=0)
    tl.store(out + seq * stride_o_t + i_h * stride_o_h + o_d, b_o.to(out.dtype.element_ty), mask=mask_d)


@lru_cache(maxsize=None)
def _num_sms(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def decode_num_splits(num_seqs: int, num_kv_heads: int, device: torch.device) -> int:
    """Splits per (sequence, kv head): enough programs to fill about two waves of the GPU's SMs, from
    host-known counts only (one split on the CPU, where the grid runs interpreted)."""
    if device.type != "cuda":
        return 1
    sms = _num_sms(device.index if device.index is not None else torch.cuda.current_device())
    return max(1, min(MAX_SPLITS, triton.cdiv(2 * sms, max(1, num_seqs * num_kv_heads))))


def paged_decode(
    q: torch.Tensor,
    out: torch.Tensor,
    kv_cache: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    scale: float,
    sliding_window: int,
    num_splits: int | None = None,
    block_n: int = 64,
) -> None:
    """Decode attention of ``q [B, h, d]`` (row ``i`` at position ``input_pos[i]``, its K/V already stored)
    over ``kv_cache [num_pages, 2, hkv, page_size, d]``, written to ``out [B, h, d]``. ``input_pos``,
    ``slot_idx`` and ``page_table`` hold one entry / row per decode sequence."""
    num_seqs, num_heads, head_dim = q.shape
    if num_seqs == 0:
        return
    num_kv_heads, page_size = kv_cache.shape[2], kv_cache.shape[3]
    group = num_heads // num_kv_heads
    splits = num_splits or decode_num_splits(num_seqs, num_kv_heads, q.device)
    ring = window_pages(sliding_window, page_size) if sliding_window > 0 else 0
    part_out = torch.empty(num_seqs, num_heads, splits, head_dim, dtype=torch.float32, device=q.device)
    part_lse = torch.empty(num_seqs, num_heads, splits, dtype=torch.float32, device=q.device)
    block_d = max(16, triton.next_power_of_2(head_dim))
    _decode_split_kernel[(num_seqs, num_kv_heads, splits)](
        q,
        kv_cache,
        input_pos,
        slot_idx,
        page_table,
        part_out,
        part_lse,
        scale * math.log2(math.e),
        q.stride(0),
        q.stride(1),
        kv_cache.stride(0),
        kv_cache.stride(1),
        kv_cache.stride(2),
        kv_cache.stride(3),
        page_table.stride(0),
        GROUP=group,
        BLOCK_G=max(16, triton.next_power_of_2(group)),
        HEAD_DIM=head_dim,
        BLOCK_D=block_d,
        BLOCK_N=block_n,
        NUM_SPLITS=splits,
        PAGE_SIZE=page_size,
        RING=ring,
        WINDOW=sliding_window,
        DOT_MODE=dot_mode(q.dtype, q.device),
    )
    _decode_merge_kernel[(num_seqs, num_heads)](
        part_out,
        part_lse,
        out,
        out.stride(0),
        out.stride(1),
        NUM_HEADS=num_heads,
        HEAD_DIM=head_dim,
        BLOCK_D=block_d,
        NUM_SPLITS=splits,
        BLOCK_S=triton.next_power_of_2(splits),
    )
