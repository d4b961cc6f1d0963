"""Token flattening shared by the cached ops: a flattened batch arrives as `[1, T, ...]` or `[B, 1, ...]`."""
from __future__ import annotations

from typing import Tuple

import torch


def flatten_tokens(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """``[b, s, ...] -> [b * s, ...]`` each, with the last dim contiguous (a view where possible)."""

    def flat(t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])
        return t if t.stride(-1) == 1 else t.contiguous()

    return tuple(flat(t) for t in tensors)
