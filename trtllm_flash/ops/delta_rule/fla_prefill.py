"""Prefill through fla's delta-rule kernels (GPU only).

``fla.ops.delta_rule.chunk_delta_rule`` is the fast path but refuses fp32 inputs (bf16 / fp16 only);
fp32 inputs go through ``fused_recurrent_delta_rule``, which is exact in fp32 and slower
(token-sequential). Both keep the state in fp32 and take packed varlen batches through ``cu_seqlens``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch


def fla_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: Optional[torch.Tensor] = None,
    cu_seqlens: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``q, k [b, s, h, dk]``, ``v [b, s, h, dv]``, ``beta [b, s, h]`` (``b == 1`` with ``cu_seqlens
    [N + 1]`` int64 for a packed batch); ``initial_state [N, h, dk, dv]`` fp32 or ``None`` (zeros).
    Returns ``o [b, s, h, dv]`` in v's dtype and the final states ``[N, h, dk, dv]`` fp32."""
    from fla.ops.delta_rule import chunk_delta_rule, fused_recurrent_delta_rule

    kernel = fused_recurrent_delta_rule if q.dtype == torch.float32 else chunk_delta_rule
    o, final_state = kernel(
        q,
        k,
        v,
        beta,
        scale=scale,
        initial_state=initial_state,
        output_final_state=True,
        cu_seqlens=cu_seqlens,
    )
    return o.to(v.dtype), final_state
