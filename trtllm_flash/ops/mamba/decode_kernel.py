"""Triton single-token Mamba2 state update on the slot pool, in place.

One program owns one ``(sequence, head, block of BP head-dim rows)`` tile ``S [BP, n]`` of
``state[slot_idx[i], head]``: one read, one write, nothing read from the host, so a launch can be captured
in a CUDA graph. Launch parameters are fixed by hand (never autotuned): the kernel updates in place.
"""
from __future__ import annotations

from typing import Tuple

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.mamba.softplus import softplus_clamped


@triton.jit
def _ssm_decode_kernel(
    x,
    dt,
    A,
    B,
    C,
    D,
    dt_bias,
    y,
    state,
    slot_idx,
    dt_min,
    dt_max,
    stride_x_n,
    stride_x_h,
    stride_dt_n,
    stride_b_n,
    stride_b_g,
    stride_c_n,
    stride_c_g,
    stride_y_n,
    stride_y_h,
    H: tl.constexpr,
    HEADS_PER_GROUP: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BP: tl.constexpr,
    BN: tl.constexpr,
):
    i_p = tl.program_id(0)
    i_nh = tl.program_id(1).to(tl.int64)
    i_n = i_nh // H
    i_h = i_nh % H
    i_g = i_h // HEADS_PER_GROUP
    slot = tl.load(slot_idx + i_n).to(tl.int64)

    o_p = i_p * BP + tl.arange(0, BP)
    o_n = tl.arange(0, BN)
    mask_p = o_p < P
    mask_n = o_n < N
    mask_s = mask_p[:, None] & mask_n[None, :]
    p_state = state + ((slot * H + i_h) * P + o_p[:, None]) * N + o_n[None, :]
    b_s = tl.load(p_state, mask=mask_s, other=0.0)

    b_dt = tl.load(dt + i_n * stride_dt_n + i_h).to(tl.float32) + tl.load(dt_bias + i_h).to(tl.float32)
    b_dt = softplus_clamped(b_dt, dt_min, dt_max)
    b_decay = tl.exp(b_dt * tl.load(A + i_h).to(tl.float32))
    b_x = tl.load(x + i_n * stride_x_n + i_h * stride_x_h + o_p, mask=mask_p, other=0.0).to(tl.float32)
    b_b = tl.load(B + i_n * stride_b_n + i_g * stride_b_g + o_n, mask=mask_n, other=0.0).to(tl.float32)
    b_c = tl.load(C + i_n * stride_c_n + i_g * stride_c_g + o_n, mask=mask_n, other=0.0).to(tl.float32)

    b_s = b_s * b_decay + (b_dt * b_x)[:, None] * b_b[None, :]
    b_y = tl.sum(b_s * b_c[None, :], axis=1) + tl.load(D + i_h).to(tl.float32) * b_x

    tl.store(p_state, b_s, mask=mask_s)
    tl.store(y + i_n * stride_y_n + i_h * stride_y_h + o_p, b_y.to(y.dtype.element_ty), mask=mask_p)


def decode_launch_config(num_seqs: int, num_heads: int, p: int, n: int) -> Tuple[int, int]:
    """``(BP, num_warps)``: short row blocks when few (sequence, head) pairs would leave SMs idle (batch 1),
    longer ones at large batch so each program streams a bigger contiguous piece of state."""
    bp = 8 if num_seqs * num_heads <= 1024 else 16
    bp = min(bp, triton.next_power_of_2(p))
    tile = bp * triton.next_power_of_2(n)
    num_warps = 4 if tile >= 2048 else 2 if tile >= 512 else 1
    return bp, num_warps


def ssm_decode_(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    y: torch.Tensor,
    state: torch.Tensor,
    slot_idx: torch.Tensor,
    dt_min: float,
    dt_max: float,
) -> None:
    """One SSM step for ``N`` sequences, in place.

    ``x [N, h, p]``, ``dt [N, h]``, ``B, C [N, g, n]`` (any float dtype, last dim contiguous), ``A, D,
    dt_bias [h]``; ``y [N, h, p]`` is written; ``state [num_slots, h, p, n]`` fp32 contiguous has rows
    ``slot_idx [N]`` read and updated. Live slots must be distinct; rows sharing a slot (the CUDA-graph
    padding sentinel) leave it holding one of their updates.
    """
    num_seqs, h, p = x.shape
    g, n = B.shape[-2:]
    if num_seqs == 0:
        return
    bp, num_warps = decode_launch_config(num_seqs, h, p, n)
    grid = (triton.cdiv(p, bp), num_seqs * h)
    _ssm_decode_kernel[grid](
        x,
        dt,
        A,
        B,
        C,
        D,
        dt_bias,
        y,
        state,
        slot_idx,
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
        BP=bp,
        BN=triton.next_power_of_2(n),
        num_warps=num_warps,
    )
