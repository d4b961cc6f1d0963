"""Naive fp32 delta rule, one token at a time: the ground truth every fast path is held to.

Plain delta rule (DeltaNet, no decay gate), fla's state convention ``S [h, dk, dv]``::

    u_t = beta_t * (v_t - S_{t-1}^T k_t)          # [dv]
    S_t = S_{t-1} + k_t u_t^T                     # [dk, dv]
    o_t = S_t^T (scale * q_t)                     # [dv]
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch


def delta_rule_step(
    state: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, scale: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One token for any number of (sequence, head) pairs, in fp32.

    ``state [..., dk, dv]``, ``q, k [..., dk]``, ``v [..., dv]``, ``beta [...]``; returns
    ``(o [..., dv], new_state [..., dk, dv])`` both fp32. ``state`` is not modified.
    """
    q, k, v, beta = q.float(), k.float(), v.float(), beta.float()
    predicted = torch.einsum("...kv,...k->...v", state, k)
    update = beta[..., None] * (v - predicted)
    new_state = state + k[..., :, None] * update[..., None, :]
    o = torch.einsum("...kv,...k->...v", new_state, q * scale)
    return o, new_state


def delta_rule_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    scale: float,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Delta rule over a padded batch, token by token.

    ``q, k [b, s, h, dk]``, ``v [b, s, h, dv]``, ``beta [b, s, h]``, ``initial_state [b, h, dk, dv]``
    (zeros when ``None``). Returns ``o [b, s, h, dv]`` in v's dtype and the final state
    ``[b, h, dk, dv]`` in fp32.
    """
    b, s, h, dk = q.shape
    dv = v.shape[-1]
    if initial_state is None:
        state = torch.zeros(b, h, dk, dv, dtype=torch.float32, device=q.device)
    else:
        state = initial_state.float()
    o = torch.empty(b, s, h, dv, dtype=torch.float32, device=q.device)
    for t in range(s):
        o[:, t], state = delta_rule_step(state, q[:, t], k[:, t], v[:, t], beta[:, t], scale)
    return o.to(v.dtype), state
