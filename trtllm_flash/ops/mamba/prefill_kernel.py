"""Triton SSD chunk scan over a packed batch of sequences, reading and writing the slot pool in place.

One program owns one ``(sequence, head, block of BP head-dim rows)`` tile of the state ``S [BP, n]`` and
walks its sequence in chunks of ``BT`` tokens, keeping ``S`` in registers (fp32)::

    G      = cumsum(dt' A) within the chunk                                  [BT]
    y      = ((C B^T) * exp(G_t - G_s) * [s <= t] * dt'_s) x + exp(G) (C S^T) + D x
    S      = exp(G_last) S + (x * dt' * exp(G_last - G))^T B

The state is read from ``state[slot_idx[i]]`` (zeros unless ``use_initial_states[i]``) and the final state
written back there. Sequence bounds come from ``cu_seqlen`` on the device and the grid from the host-side
sequence count, so nothing is synchronised. Launch parameters are fixed (never autotuned): the kernel
writes its state in place.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.mamba.softplus import softplus_clamped


@triton.jit
def _ssd_prefill_kernel(
    x,
    dt,
    A,
    B,
    C,
    D,
    dt_bias,
    y,
    state,
    cu_seqlen,
    slot_idx,
    use_initial_states,
    dt_min,
    dt_max,
    stride_x_t,
    stride_x_h,
    stride_dt_t,
    stride_b_t,
    stride_b_g,
    stride_c_t,
    stride_c_g,
    stride_y_t,
    stride_y_h,
    H: tl.constexpr,
    HEADS_PER_GROUP: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BP: tl.constexpr,
    BN: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_p = tl.program_id(0)
    i_nh = tl.program_id(1).to(tl.int64)
    i_n = i_nh // H
    i_h = i_nh % H
    i_g = i_h // HEADS_PER_GROUP
    start = tl.load(cu_seqlen + i_n).to(tl.int64)
    end = tl.load(cu_seqlen + i_n + 1).to(tl.int64)
    slot = tl.load(slot_idx + i_n).to(tl.int64)
    use_initial = tl.load(use_initial_states + i_n) != 0

    o_p = i_p * BP + tl.arange(0, BP)
    o_n = tl.arange(0, BN)
    mask_p = o_p < P
    mask_n = o_n < N
    mask_s = mask_p[:, None] & mask_n[None, :]
    p_state = state + ((slot * H + i_h) * P + o_p[:, None]) * N + o_n[None, :]
    b_s = tl.load(p_state, mask=mask_s & use_initial, other=0.0)

    b_a = tl.load(A + i_h).to(tl.float32)
    b_d = tl.load(D + i_h).to(tl.float32)
    b_bias = tl.load(dt_bias + i_h).to(tl.float32)
    o_c = tl.arange(0, BT)
    causal = o_c[:, None] >= o_c[None, :]
    for t0 in range(start, end, BT):
        o_t = t0 + o_c
        mask_t = o_t < end
        b_dt = tl.load(dt + o_t * stride_dt_t + i_h, mask=mask_t, other=0.0).to(tl.float32)
        b_dt = tl.where(mask_t, softplus_clamped(b_dt + b_bias, dt_min, dt_max), 0.0)
        b_g = tl.cumsum(b_dt * b_a, axis=0)
        b_g_last = tl.sum(b_dt * b_a, axis=0)
        mask_tp = mask_t[:, None] & mask_p[None, :]
        mask_tn = mask_t[:, None] & mask_n[None, :]
        b_x = tl.load(x + o_t[:, None] * stride_x_t + i_h * stride_x_h + o_p[None, :], mask=mask_tp, other=0.0).to(tl.float32)
        b_b = tl.load(B + o_t[:, None] * stride_b_t + i_g * stride_b_g + o_n[None, :], mask=mask_tn, other=0.0).to(tl.float32)
        b_c = tl.load(C + o_t[:, None] * stride_c_t + i_g * stride_c_g + o_n[None, :], mask=mask_tn, other=0.0).to(tl.float32)

        b_scores = tl.dot(b_c, tl.trans(b_b), input_precision=PRECISION)
        b_decay = tl.exp(tl.where(causal, b_g[:, None] - b_g[None, :], float("-inf")))
        b_w = b_scores * b_decay * b_dt[None, :]
        b_y = tl.dot(b_w, b_x, input_precision=PRECISION)
        b_y += tl.exp(b_g)[:, None] * tl.dot(b_c, tl.trans(b_s), input_precision=PRECISION)
        b_y += b_d * b_x
        p_y = y + o_t[:, None] * stride_y_t + i_h * stride_y_h + o_p[None, :]
        tl.store(p_y, b_y.to(y.dtype.element_ty), mask=mask_tp)

        b_xw = b_x * (b_dt * tl.exp(b_g_last - b_g))[:, None]
        b_s = b_s * tl.exp(b_g_last) + tl.dot(tl.trans(b_xw), b_b, input_precision=PRECISION)
    tl.store(p_state, b_s, mask=mask_s)


#: tokens per in-kernel chunk; the result does not depend on it (the op's ``chunk_size`` is a hint)
BLOCK_T = 64


def ssd_prefill_(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    y: torch.Tensor,
    state: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    num_seqs: int,
    dt_min: float,
    dt_max: float,
) -> None:
    """Chunked SSD for ``num_seqs`` packed sequences, in place.

    ``x [T, h, p]``, ``dt [T, h]``, ``B, C [T, g, n]`` (any float dtype, last dim contiguous), ``A, D,
    dt_bias [h]``; ``y [T, h, p]`` is written for the tokens ``cu_seqlen[i] .. cu_seqlen[i+1]`` of each
    sequence; ``state [num_slots, h, p, n]`` fp32 contiguous: row ``slot_idx[i]`` is the initial state when
    ``use_initial_states[i]`` (else zeros) and receives the final state. Slots must be distinct.
    """
    if num_seqs == 0:
        return
    _, h, p = x.shape
    g, n = B.shape[-2:]
    bp = min(32, max(16, triton.next_power_of_2(p)))
    grid = (triton.cdiv(p, bp), num_seqs * h)
    _ssd_prefill_kernel[grid](
        x,
        dt,
        A,
        B,
        C,
        D,
        dt_bias,
        y,
        state,
        cu_seqlen,
        slot_idx,
        use_initial_states,
        float(dt_min),
        float(dt_max),
        x.stride(0),
        x.stride(1),
        dt.stride(0),
        B.stride(0),
        B.stride(1),
        C.stride(0),
        C.stride(1),
        y.stride(0),
        y.stride(1),
        H=h,
        HEADS_PER_GROUP=h // g,
        P=p,
        N=n,
        BT=BLOCK_T,
        BP=bp,
        BN=max(16, triton.next_power_of_2(n)),
        PRECISION="ieee" if x.dtype == torch.float32 else "tf32",
        num_warps=4,
    )
