"""Chunked SSD (Mamba2's state-space dual form) in pure torch: the eager / CPU implementation.

The sequence is cut into chunks of ``chunk_size`` tokens. With ``G_t`` the within-chunk cumulative sum
of ``dt'_t A`` (so the decay from token s to token t of a chunk is ``exp(G_t - G_s)``)::

    y_t   = sum_{s <= t in chunk} exp(G_t - G_s) (C_t . B_s) dt'_s x_s      (intra-chunk, quadratic)
          + exp(G_t) S_prev C_t                                             (state entering the chunk)
          + D x_t
    S_out = exp(G_last) S_prev + sum_s exp(G_last - G_s) dt'_s x_s B_s^T

Tokens past the end are padded with ``dt' = 0`` (decay 1, no contribution), so any ``chunk_size`` works.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from trtllm_flash.ops.mamba.reference import effective_dt, heads_of_groups


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    dt_min: float,
    dt_max: float,
    chunk_size: int,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Same signature and result as :func:`~trtllm_flash.ops.mamba.reference.ssm_reference` plus
    ``chunk_size``: ``x [b, s, h, p]`` -> ``(y [b, s, h, p]`` in x's dtype, final state ``[b, h, p, n]`` fp32)."""
    b, s, h, p = x.shape
    n = B.shape[-1]
    q = chunk_size
    num_chunks = -(-s // q)
    pad = num_chunks * q - s
    dtp = F.pad(effective_dt(dt, dt_bias, dt_min, dt_max), (0, 0, 0, pad))  # [b, L, h]
    x32 = F.pad(x.float(), (0, 0, 0, 0, 0, pad))
    B_h = F.pad(heads_of_groups(B.float(), h), (0, 0, 0, 0, 0, pad))
    C_h = F.pad(heads_of_groups(C.float(), h), (0, 0, 0, 0, 0, pad))

    def chunks(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(b, num_chunks, q, *t.shape[2:])

    dtp, x32, B_h, C_h = chunks(dtp), chunks(x32), chunks(B_h), chunks(C_h)  # [b, c, q, h, ...]
    cum = torch.cumsum(dtp * A.float(), dim=2)  # [b, c, q, h]
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    diff = (cum[:, :, :, None, :] - cum[:, :, None, :, :]).masked_fill(~causal[None, None, :, :, None], float("-inf"))
    scores = torch.einsum("bctjn,bcsjn->bctsj", C_h, B_h) * torch.exp(diff) * dtp[:, :, None, :, :]
    y = torch.einsum("bctsj,bcsjp->bctjp", scores, x32)

    to_end = torch.exp(cum[:, :, -1:, :] - cum) * dtp  # [b, c, q, h]
    chunk_states = torch.einsum("bcsj,bcsjp,bcsjn->bcjpn", to_end, x32, B_h)
    chunk_decay = torch.exp(cum[:, :, -1, :])  # [b, c, h]
    state = torch.zeros(b, h, p, n, device=x.device) if initial_state is None else initial_state.float()
    entering = []
    for c in range(num_chunks):
        entering.append(state)
        state = chunk_decay[:, c, :, None, None] * state + chunk_states[:, c]
    entering = torch.stack(entering, dim=1)  # [b, c, h, p, n]
    y = y + torch.einsum("bcjpn,bctjn->bctjp", entering, C_h) * torch.exp(cum)[..., None]
    y = y.reshape(b, num_chunks * q, h, p)[:, :s] + D.float()[:, None] * x.float()
    return y.to(x.dtype), state
