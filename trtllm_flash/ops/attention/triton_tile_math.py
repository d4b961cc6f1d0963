"""Pieces shared by the prefill and decode kernels: the matrix product and the online-softmax step
(scores in the log2 domain, fp32)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

#: running max of a row before it has seen a key: finite, so ``exp2(m_old - m_new)`` never meets ``-inf - -inf``
EMPTY_ROW_MAX = tl.constexpr(-1.0e30)


def dot_mode(dtype: torch.dtype, device: torch.device) -> str:
    """How the kernels multiply tiles: ``"ieee"`` exact fp32 for fp32 inputs (no TF32 rounding), ``"native"``
    tensor-core half-precision products with fp32 accumulation, and ``"upcast"`` the same products computed
    in fp32 (exact: a product of two halves fits fp32) where Triton's CPU interpreter gets half dots wrong."""
    if dtype == torch.float32:
        return "ieee"
    return "native" if device.type == "cuda" else "upcast"


@triton.jit
def mma(a, b, DOT_MODE: tl.constexpr):
    """``a [M, K] @ b [K, N]`` accumulated in fp32 (see :func:`dot_mode`)."""
    if DOT_MODE == "native":
        return tl.dot(a, b)
    return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")


@triton.jit
def online_softmax_step(acc, m_i, l_i, scores, b_v, DOT_MODE: tl.constexpr):
    """Fold one key block into the running output of a tile of rows.

    ``acc [M, D]`` fp32 un-normalised output, ``m_i, l_i [M]`` running max and sum, ``scores [M, N]`` fp32
    already scaled by ``scale * log2(e)`` with ``-inf`` at invisible keys, ``b_v [N, D]`` the block's values
    (the probabilities are rounded to ``b_v``'s dtype before the product, as a half-precision kernel does).
    """
    m_new = tl.maximum(m_i, tl.max(scores, axis=1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(scores - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + mma(p.to(b_v.dtype), b_v, DOT_MODE)
    return acc, m_new, l_i
