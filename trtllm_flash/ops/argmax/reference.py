"""Pure-torch row argmax: the reference the Triton kernel is held to (and the CPU op)."""
from __future__ import annotations

import torch


def argmax_reference(logits: torch.Tensor) -> torch.Tensor:
    """``logits [N, V] -> [N]`` int64: the first index of each row's maximum (a NaN counts as the maximum)."""
    return torch.argmax(logits, dim=-1)
