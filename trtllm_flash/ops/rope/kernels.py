"""One Triton launch that rotates q and k together (rotate-half RoPE, fp32 math).

Grid ``(b * s,)``: each program takes one token, loads its ``cos, sin [d]`` once and rotates all ``h`` q heads
and all ``hkv`` k heads as ``[heads, d / 2]`` tiles (first and second halves separately, so no gather):

    out[:d/2] = x1 * cos[:d/2] - x2 * sin[:d/2]
    out[d/2:] = x2 * cos[d/2:] + x1 * sin[d/2:]

Inputs are read through their strides (q / k are usually non-contiguous views of a fused projection,
``cos / sin`` may be broadcast over the batch); the outputs are new contiguous tensors of q's / k's dtype.
"""
from __future__ import annotations

from typing import Tuple

import torch
import triton
import triton.language as tl


@triton.jit
def _rotate_heads(
    x,
    out,
    b_c1,
    b_c2,
    b_s1,
    b_s2,
    token_offset,
    stride_h,
    stride_d,
    out_token_offset,
    n_heads,
    HALF: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    """Rotates the ``n_heads`` heads of one token: ``x`` read at ``token_offset + head * stride_h +
    col * stride_d``, ``out`` written contiguously at ``out_token_offset + head * 2 * HALF + col``."""
    heads = tl.arange(0, BLOCK_H)
    cols = tl.arange(0, BLOCK_HALF)
    mask = (heads[:, None] < n_heads) & (cols[None, :] < HALF)
    offsets = token_offset + heads[:, None].to(tl.int64) * stride_h + cols[None, :] * stride_d
    x1 = tl.load(x + offsets, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x + offsets + HALF * stride_d, mask=mask, other=0.0).to(tl.float32)
    o1 = x1 * b_c1[None, :] - x2 * b_s1[None, :]
    o2 = x2 * b_c2[None, :] + x1 * b_s2[None, :]
    out_offsets = out_token_offset + heads[:, None] * (2 * HALF) + cols[None, :]
    tl.store(out + out_offsets, o1.to(out.dtype.element_ty), mask=mask)
    tl.store(out + out_offsets + HALF, o2.to(out.dtype.element_ty), mask=mask)


@triton.jit
def _rope_kernel(
    q,
    k,
    cos,
    sin,
    q_out,
    k_out,
    seq_len,
    n_q_heads,
    n_k_heads,
    stride_qb,
    stride_qs,
    stride_qh,
    stride_qd,
    stride_kb,
    stride_ks,
    stride_kh,
    stride_kd,
    stride_cb,
    stride_cs,
    stride_cd,
    stride_sb,
    stride_ss,
    stride_sd,
    HALF: tl.constexpr,
    BLOCK_HQ: tl.constexpr,
    BLOCK_HK: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    token = tl.program_id(0).to(tl.int64)
    bi = token // seq_len
    si = token % seq_len
    cols = tl.arange(0, BLOCK_HALF)
    col_mask = cols < HALF
    c_base = cos + bi * stride_cb + si * stride_cs + cols * stride_cd
    s_base = sin + bi * stride_sb + si * stride_ss + cols * stride_sd
    b_c1 = tl.load(c_base, mask=col_mask, other=0.0).to(tl.float32)
    b_c2 = tl.load(c_base + HALF * stride_cd, mask=col_mask, other=0.0).to(tl.float32)
    b_s1 = tl.load(s_base, mask=col_mask, other=0.0).to(tl.float32)
    b_s2 = tl.load(s_base + HALF * stride_sd, mask=col_mask, other=0.0).to(tl.float32)
    _rotate_heads(
        q, q_out, b_c1, b_c2, b_s1, b_s2,
        bi * stride_qb + si * stride_qs, stride_qh, stride_qd,
        token * n_q_heads * (2 * HALF), n_q_heads,
        HALF, BLOCK_HQ, BLOCK_HALF,
    )
    _rotate_heads(
        k, k_out, b_c1, b_c2, b_s1, b_s2,
        bi * stride_kb + si * stride_ks, stride_kh, stride_kd,
        token * n_k_heads * (2 * HALF), n_k_heads,
        HALF, BLOCK_HK, BLOCK_HALF,
    )


def rope_triton(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`reference.rope_reference`: ``q [b, s, h, d]``, ``k [b, s, hkv, d]`` (any
    strides), ``cos, sin [b, s, d]`` -> contiguous ``(q_out, k_out)`` of q's / k's dtype."""
    b, s, h, d = q.shape
    hkv = k.shape[2]
    q_out = torch.empty((b, s, h, d), dtype=q.dtype, device=q.device)
    k_out = torch.empty((b, s, hkv, d), dtype=k.dtype, device=k.device)
    tokens = b * s
    if tokens == 0 or d == 0:
        return q_out, k_out
    half = d // 2
    block_half = triton.next_power_of_2(half)
    block_hq = triton.next_power_of_2(max(h, 1))
    block_hk = triton.next_power_of_2(max(hkv, 1))
    _rope_kernel[(tokens,)](
        q,
        k,
        cos,
        sin,
        q_out,
        k_out,
        s,
        h,
        hkv,
        *q.stride(),
        *k.stride(),
        *cos.stride(),
        *sin.stride(),
        HALF=half,
        BLOCK_HQ=block_hq,
        BLOCK_HK=block_hk,
        BLOCK_HALF=block_half,
        num_warps=min(max(block_hq * block_half // 256, 1), 8),
    )
    return q_out, k_out
