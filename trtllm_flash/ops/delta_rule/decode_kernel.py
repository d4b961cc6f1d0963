"""Triton decode step of the delta rule that updates the slot pool in place.

fla 0.6.0's ``fused_recurrent_delta_rule`` takes dense ``initial_state [N, h, dk, dv]`` and returns a new
final state, so decoding with it would need a gather from and a scatter into the slot pool (two extra
full-state copies). This kernel reads and writes ``delta_state[slot_idx[n]]`` directly.

The update decouples over value columns (``S[:, j]`` only needs ``v[j]``), so each program owns one
``(sequence, head, block of BV value columns)`` tile ``S[:, j0:j0+BV]`` of ``dk x BV`` fp32 and touches it
exactly once: one read, one write. Nothing is read from the host, so a launch can be captured in a CUDA
graph.

With ``QK_L2NORM`` / ``BETA_SIGMOID`` the kernel also does DeltaNet's prologue on what it loads (q, k of
its head; its beta), as the unfused graph's ops would: ``x * rsqrt(sum(x^2) + eps)`` and ``sigmoid(beta)``
in fp32, each rounded to its input's dtype before use.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl


@triton.jit
def _delta_rule_decode_kernel(
    q,
    k,
    v,
    beta,
    o,
    state,
    slot_idx,
    scale,
    eps,
    stride_q_n,
    stride_q_h,
    stride_k_n,
    stride_k_h,
    stride_v_n,
    stride_v_h,
    stride_beta_n,
    stride_beta_h,
    stride_o_n,
    stride_o_h,
    H: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    QK_L2NORM: tl.constexpr,
    BETA_SIGMOID: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_nh = tl.program_id(1).to(tl.int64)
    i_n = i_nh // H
    i_h = i_nh % H
    slot = tl.load(slot_idx + i_n).to(tl.int64)

    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    mask_k = o_k < K
    mask_v = o_v < V
    mask_s = mask_k[:, None] & mask_v[None, :]

    p_state = state + ((slot * H + i_h) * K + o_k[:, None]) * V + o_v[None, :]
    b_s = tl.load(p_state, mask=mask_s, other=0.0)
    b_q = tl.load(q + i_n * stride_q_n + i_h * stride_q_h + o_k, mask=mask_k, other=0.0).to(tl.float32)
    b_k = tl.load(k + i_n * stride_k_n + i_h * stride_k_h + o_k, mask=mask_k, other=0.0).to(tl.float32)
    b_v = tl.load(v + i_n * stride_v_n + i_h * stride_v_h + o_v, mask=mask_v, other=0.0).to(tl.float32)
    b_beta = tl.load(beta + i_n * stride_beta_n + i_h * stride_beta_h).to(tl.float32)
    if QK_L2NORM:
        b_q = (b_q * tl.rsqrt(tl.sum(b_q * b_q, axis=0) + eps)).to(q.dtype.element_ty).to(tl.float32)
        b_k = (b_k * tl.rsqrt(tl.sum(b_k * b_k, axis=0) + eps)).to(k.dtype.element_ty).to(tl.float32)
    if BETA_SIGMOID:
        b_beta = tl.sigmoid(b_beta).to(beta.dtype.element_ty).to(tl.float32)
    b_q = b_q * scale

    b_u = b_beta * (b_v - tl.sum(b_s * b_k[:, None], axis=0))
    b_s += b_k[:, None] * b_u[None, :]
    b_o = tl.sum(b_s * b_q[:, None], axis=0)

    tl.store(p_state, b_s, mask=mask_s)
    tl.store(o + i_n * stride_o_n + i_h * stride_o_h + o_v, b_o.to(o.dtype.element_ty), mask=mask_v)


def decode_launch_config(num_seqs: int, num_heads: int, dk: int, dv: int) -> Tuple[int, int]:
    """``(BV, num_warps)``: narrow value blocks when few (sequence, head) pairs would leave SMs idle
    (batch 1: 16 or 24 heads x dv/16 blocks), wider ones at large batch for longer contiguous rows."""
    bv = 16 if num_seqs * num_heads <= 512 else 32
    bv = min(bv, triton.next_power_of_2(dv))
    tile = triton.next_power_of_2(dk) * bv
    num_warps = 4 if tile >= 4096 else 2 if tile >= 1024 else 1
    return bv, num_warps


def delta_rule_decode_(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    o: torch.Tensor,
    state: torch.Tensor,
    slot_idx: torch.Tensor,
    scale: float,
    qk_l2norm_eps: Optional[float] = None,
    beta_sigmoid: bool = False,
) -> None:
    """One delta-rule step for ``N`` sequences, in place.

    ``q, k [N, h, dk]``, ``v [N, h, dv]``, ``beta [N, h]`` (any float dtype, last dim contiguous);
    ``o [N, h, dv]`` is written; ``state [num_slots, h, dk, dv]`` fp32 contiguous has rows
    ``slot_idx [N]`` (int64) read and updated. Live slots must be distinct; rows sharing a slot (the
    CUDA-graph padding sentinel) leave it holding one of their updates. ``qk_l2norm_eps`` (not None:
    L2-normalise q and k in the kernel) and ``beta_sigmoid`` are the source op's options.
    """
    n, h, dk = q.shape
    dv = v.shape[-1]
    if n == 0:
        return
    bv, num_warps = decode_launch_config(n, h, dk, dv)
    grid = (triton.cdiv(dv, bv), n * h)
    _delta_rule_decode_kernel[grid](
        q,
        k,
        v,
        beta,
        o,
        state,
        slot_idx,
        scale,
        0.0 if qk_l2norm_eps is None else qk_l2norm_eps,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        beta.stride(0),
        beta.stride(1),
        o.stride(0),
        o.stride(1),
        H=h,
        K=dk,
        V=dv,
        BK=triton.next_power_of_2(dk),
        BV=bv,
        QK_L2NORM=qk_l2norm_eps is not None,
        BETA_SIGMOID=beta_sigmoid,
        num_warps=num_warps,
    )
