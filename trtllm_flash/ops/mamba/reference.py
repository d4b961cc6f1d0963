"""Naive fp32 Mamba2 SSM, one token at a time: the ground truth every fast path is held to.

Per head ``h`` (group ``h // (num_heads // num_groups)``), state ``S [p, n]`` fp32::

    dt'_t = clamp(softplus(dt_t + dt_bias), dt_min, dt_max)
    S_t   = exp(dt'_t * A) * S_{t-1} + dt'_t * x_t B_t^T        # x_t [p], B_t [n]
    y_t   = S_t C_t + D * x_t                                   # [p]
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F


def effective_dt(dt: torch.Tensor, dt_bias: torch.Tensor, dt_min: float, dt_max: float) -> torch.Tensor:
    """``dt [..., h]`` -> ``clamp(softplus(dt + dt_bias), dt_min, dt_max)`` in fp32 (softplus threshold 20)."""
    return F.softplus(dt.float() + dt_bias.float()).clamp(min=dt_min, max=dt_max)


def heads_of_groups(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[..., g, n]`` -> ``[..., num_heads, n]``: head ``h`` reads group ``h // (num_heads // g)``."""
    return t.repeat_interleave(num_heads // t.shape[-2], dim=-2)


def ssm_step(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    dt_min: float,
    dt_max: float,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """One token for ``N`` sequences: ``state [N, h, p, n]`` fp32, ``x [N, h, p]``, ``dt [N, h]``,
    ``B, C [N, g, n]``; returns ``(y [N, h, p] fp32, new_state [N, h, p, n] fp32)``; ``state`` is not modified."""
    h = x.shape[-2]
    dtp = effective_dt(dt, dt_bias, dt_min, dt_max)  # [N, h]
    x32 = x.float()
    B_h, C_h = heads_of_groups(B.float(), h), heads_of_groups(C.float(), h)  # [N, h, n]
    decay = torch.exp(dtp * A.float())[..., None, None]
    new_state = decay * state + (dtp[..., None] * x32)[..., :, None] * B_h[..., None, :]
    y = torch.einsum("...pn,...n->...p", new_state, C_h) + D.float()[:, None] * x32
    return y, new_state


def ssm_reference(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    dt_min: float,
    dt_max: float,
    initial_state: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mamba2 SSM over a padded batch, token by token.

    ``x [b, s, h, p]``, ``dt [b, s, h]``, ``A, D, dt_bias [h]``, ``B, C [b, s, g, n]``,
    ``initial_state [b, h, p, n]`` (zeros when ``None``). Returns ``y [b, s, h, p]`` in x's dtype and the
    final state ``[b, h, p, n]`` fp32.
    """
    b, s, h, p = x.shape
    n = B.shape[-1]
    state = torch.zeros(b, h, p, n, device=x.device) if initial_state is None else initial_state.float()
    y = torch.empty(b, s, h, p, dtype=torch.float32, device=x.device)
    for t in range(s):
        y[:, t], state = ssm_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t], D, dt_bias, dt_min, dt_max)
    return y.to(x.dtype), state
