"""Reference of ``linear``: ``F.linear(x, weight)`` (no bias), what the exported graph computes."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def linear_reference(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x [..., K]``, ``weight [N, K]`` -> ``x @ weight^T`` ``[..., N]`` in x's dtype."""
    return F.linear(x, weight)
