"""Pure-torch rotary position embedding (rotate-half, full head dim), fp32 compute: the reference the Triton
kernel is held to (and the CPU op).

``q [b, s, h, d]``, ``k [b, s, hkv, d]`` (bsnd, ``h`` may differ from ``hkv``); ``cos, sin [b, s, d]`` fp32,
the rotary embedding's ``cat(freqs, freqs).cos() / .sin()``, shared by every head of a token.
"""
from __future__ import annotations

from typing import Tuple

import torch


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last dim (halves of ``d / 2``)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x [b, s, n, d]`` rotated by ``cos, sin [b, s, d]``: ``x * cos + rotate_half(x) * sin`` in fp32 math,
    cast back to x's dtype (the eager model's ``modeling.rope.apply_rope``, bit for bit)."""
    cos, sin = cos.unsqueeze(2).float(), sin.unsqueeze(2).float()
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


def rope_reference(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(rope(q), rope(k))``, each in its own dtype and shape."""
    return apply_rope_reference(q, cos, sin), apply_rope_reference(k, cos, sin)
