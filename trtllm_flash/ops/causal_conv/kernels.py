"""Triton kernels of the depthwise causal conv1d over a packed batch, with the ``conv_state`` slot pool.

``conv_state [num_slots, c, k-1]`` holds each sequence's last k-1 inputs (oldest first, channel-major).
Three kernels, each owning disjoint tiles, fixed launch parameters (never autotuned: two write in place):

* :func:`conv_prefill` — every token of the prefill sequences; inputs before a sequence's start come from
  its slot (when it continues a cached state) or are zero. Grid ``(sequence, token block, channel block)``.
* :func:`store_conv_windows_` — after the prefill, each slot receives its sequence's last k-1 inputs
  (a sequence shorter than k-1 keeps the tail of its old window, shifted).
* :func:`conv_decode_` — one token per sequence: reads the window, writes the output and the shifted window.
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl


@triton.jit
def _conv_prefill_kernel(
    x,
    weight,
    bias,
    y,
    state,
    cu_seqlen,
    slot_idx,
    use_initial_states,
    stride_x_t,
    stride_y_t,
    C: tl.constexpr,
    K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_STATE: tl.constexpr,
    SILU: tl.constexpr,
    BT: tl.constexpr,
    BC: tl.constexpr,
):
    i_n = tl.program_id(0).to(tl.int64)
    i_t = tl.program_id(1)
    i_c = tl.program_id(2)
    start = tl.load(cu_seqlen + i_n).to(tl.int64)
    end = tl.load(cu_seqlen + i_n + 1).to(tl.int64)
    if start + i_t * BT < end:
        o_t = start + i_t * BT + tl.arange(0, BT)
        o_c = i_c * BC + tl.arange(0, BC)
        mask_t = o_t < end
        mask_c = o_c < C
        pos = o_t - start
        acc = tl.zeros((BT, BC), dtype=tl.float32)
        if HAS_BIAS:
            acc += tl.load(bias + o_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        if HAS_STATE:
            slot = tl.load(slot_idx + i_n).to(tl.int64)
            use_initial = tl.load(use_initial_states + i_n) != 0
        for j in tl.static_range(K):
            rel = pos - (K - 1) + j
            in_seq = mask_t & (rel >= 0)
            p_x = x + (o_t - (K - 1) + j)[:, None] * stride_x_t + o_c[None, :]
            b_x = tl.load(p_x, mask=in_seq[:, None] & mask_c[None, :], other=0.0).to(tl.float32)
            if HAS_STATE:
                cached = mask_t & (rel < 0) & use_initial
                p_s = state + (slot * C + o_c[None, :]) * (K - 1) + (K - 1 + rel)[:, None]
                b_x += tl.load(p_s, mask=cached[:, None] & mask_c[None, :], other=0.0).to(tl.float32)
            b_w = tl.load(weight + o_c * K + j, mask=mask_c, other=0.0).to(tl.float32)
            acc += b_x * b_w[None, :]
        if SILU:
            acc = acc * tl.sigmoid(acc)
        p_y = y + o_t[:, None] * stride_y_t + o_c[None, :]
        tl.store(p_y, acc.to(y.dtype.element_ty), mask=mask_t[:, None] & mask_c[None, :])


@triton.jit
def _store_windows_kernel(
    x,
    state,
    cu_seqlen,
    slot_idx,
    use_initial_states,
    stride_x_t,
    C: tl.constexpr,
    KM1: tl.constexpr,
    BK: tl.constexpr,
    BC: tl.constexpr,
):
    i_n = tl.program_id(0).to(tl.int64)
    i_c = tl.program_id(1)
    start = tl.load(cu_seqlen + i_n).to(tl.int64)
    length = tl.load(cu_seqlen + i_n + 1).to(tl.int64) - start
    slot = tl.load(slot_idx + i_n).to(tl.int64)
    use_initial = tl.load(use_initial_states + i_n) != 0
    o_c = i_c * BC + tl.arange(0, BC)
    o_j = tl.arange(0, BK)
    mask = (o_c < C)[:, None] & (o_j < KM1)[None, :]
    rel = length - KM1 + o_j  # position in the sequence of window entry j
    p_x = x + (start + rel)[None, :] * stride_x_t + o_c[:, None]
    b_new = tl.load(p_x, mask=mask & (rel >= 0)[None, :], other=0.0)
    p_old = state + (slot * C + o_c[:, None]) * KM1 + (KM1 + rel)[None, :]
    b_old = tl.load(p_old, mask=mask & (rel < 0)[None, :] & use_initial, other=0.0)
    p_state = state + (slot * C + o_c[:, None]) * KM1 + o_j[None, :]
    tl.store(p_state, tl.where((rel >= 0)[None, :], b_new.to(state.dtype.element_ty), b_old), mask=mask)


@triton.jit
def _conv_decode_kernel(
    x,
    weight,
    bias,
    y,
    state,
    slot_idx,
    stride_x_n,
    stride_y_n,
    C: tl.constexpr,
    K: tl.constexpr,
    BK: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SILU: tl.constexpr,
    BC: tl.constexpr,
):
    i_n = tl.program_id(0).to(tl.int64)
    i_c = tl.program_id(1)
    slot = tl.load(slot_idx + i_n).to(tl.int64)
    o_c = i_c * BC + tl.arange(0, BC)
    o_j = tl.arange(0, BK)
    mask_c = o_c < C
    mask = mask_c[:, None] & (o_j < K - 1)[None, :]
    p_state = state + (slot * C + o_c[:, None]) * (K - 1) + o_j[None, :]
    b_window = tl.load(p_state, mask=mask, other=0.0)
    b_x = tl.load(x + i_n * stride_x_n + o_c, mask=mask_c, other=0.0)
    b_w = tl.load(weight + o_c[:, None] * K + o_j[None, :], mask=mask, other=0.0).to(tl.float32)
    acc = tl.sum(b_window.to(tl.float32) * b_w, axis=1)
    acc += b_x.to(tl.float32) * tl.load(weight + o_c * K + (K - 1), mask=mask_c, other=0.0).to(tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias + o_c, mask=mask_c, other=0.0).to(tl.float32)
    if SILU:
        acc = acc * tl.sigmoid(acc)
    tl.store(y + i_n * stride_y_n + o_c, acc.to(y.dtype.element_ty), mask=mask_c)
    # shift left by one: entry j takes entry j + 1, the last takes x
    p_next = state + (slot * C + o_c[:, None]) * (K - 1) + (o_j + 1)[None, :]
    b_shifted = tl.load(p_next, mask=mask & (o_j + 1 < K - 1)[None, :], other=0.0)
    b_new = tl.where((o_j == K - 2)[None, :], b_x.to(state.dtype.element_ty)[:, None], b_shifted)
    tl.store(p_state, b_new, mask=mask)


BLOCK_T = 32
BLOCK_C = 128


def conv_prefill(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    y: torch.Tensor,
    cu_seqlen: torch.Tensor,
    num_seqs: int,
    max_seq_len: int,
    activation: str,
    state: Optional[torch.Tensor] = None,
    slot_idx: Optional[torch.Tensor] = None,
    use_initial_states: Optional[torch.Tensor] = None,
) -> None:
    """Causal conv of ``num_seqs`` packed sequences: ``x, y [T, c]`` (last dim contiguous), ``weight [c, 1, k]``
    contiguous, ``bias [c]`` or ``None``, ``cu_seqlen [>= num_seqs + 1]`` int32. ``max_seq_len`` bounds every
    sequence's length (the grid; blocks past a sequence's end exit). With ``state`` (``[num_slots, c, k-1]``),
    sequence ``i`` starts from window ``state[slot_idx[i]]`` when ``use_initial_states[i]``; else from zeros.
    ``state`` is only read."""
    if num_seqs == 0:
        return
    c = x.shape[-1]
    k = weight.shape[-1]
    has_state = state is not None
    grid = (num_seqs, triton.cdiv(max_seq_len, BLOCK_T), triton.cdiv(c, BLOCK_C))
    _conv_prefill_kernel[grid](
        x,
        weight,
        bias if bias is not None else x,
        y,
        state if has_state else x,
        cu_seqlen,
        slot_idx if has_state else cu_seqlen,
        use_initial_states if has_state else cu_seqlen,
        x.stride(0),
        y.stride(0),
        C=c,
        K=k,
        HAS_BIAS=bias is not None,
        HAS_STATE=has_state,
        SILU=activation == "silu",
        BT=BLOCK_T,
        BC=BLOCK_C,
        num_warps=4,
    )


def store_conv_windows_(
    x: torch.Tensor, state: torch.Tensor, cu_seqlen: torch.Tensor, slot_idx: torch.Tensor, use_initial_states: torch.Tensor, num_seqs: int
) -> None:
    """Write each prefill sequence's last k-1 inputs into ``state[slot_idx[i]]`` (``[num_slots, c, k-1]``
    contiguous); inputs before the sequence start come from the old window (when ``use_initial_states[i]``)
    or are zero. Run after :func:`conv_prefill`, which reads the old windows. Slots must be distinct."""
    if num_seqs == 0:
        return
    c, km1 = state.shape[1:]
    grid = (num_seqs, triton.cdiv(c, BLOCK_C))
    _store_windows_kernel[grid](
        x, state, cu_seqlen, slot_idx, use_initial_states, x.stride(0), C=c, KM1=km1, BK=triton.next_power_of_2(km1), BC=BLOCK_C, num_warps=4
    )


def conv_decode_(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    y: torch.Tensor,
    state: torch.Tensor,
    slot_idx: torch.Tensor,
    activation: str,
) -> None:
    """One token per sequence, in place: ``x, y [N, c]``, ``state [num_slots, c, k-1]`` contiguous has rows
    ``slot_idx [N]`` read and shifted (x appended). Nothing is read on the host (CUDA-graph safe)."""
    n, c = x.shape
    if n == 0:
        return
    k = weight.shape[-1]
    grid = (n, triton.cdiv(c, BLOCK_C))
    _conv_decode_kernel[grid](
        x,
        weight,
        bias if bias is not None else x,
        y,
        state,
        slot_idx,
        x.stride(0),
        y.stride(0),
        C=c,
        K=k,
        BK=triton.next_power_of_2(k - 1),
        HAS_BIAS=bias is not None,
        SILU=activation == "silu",
        BC=BLOCK_C,
        num_warps=4,
    )
