"""Rotary position embedding (rotate-half, full head dim) with the ``default`` and static ``ntk`` bases."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn


def ntk_base(base: float, dim: int, max_position_embeddings: int, orig_max_position_embeddings: int) -> float:
    """Static NTK-scaled base: ``base * (2 * max_pos / orig_max_pos - 1) ** (dim / (dim - 2))``."""
    return base * (2 * max_position_embeddings / orig_max_position_embeddings - 1) ** (dim / (dim - 2))


class RotaryEmbedding(nn.Module):
    """``rotary(x, position_ids [b, s]) -> (cos, sin)``, each ``[b, s, dim]`` fp32 (``cat(freqs, freqs)``).

    ``inv_freq[i] = base ** (-2i / dim)`` is computed on the fly in fp32 (no buffer, so casting the model to
    bf16 or building it on the meta device cannot change it).
    """

    def __init__(self, dim: int, base: float, rope_type: Optional[str] = None, max_position_embeddings: int = 0,
                 orig_max_position_embeddings: Optional[int] = None):
        super().__init__()
        self.dim = dim
        if (rope_type or "default") == "ntk":
            base = ntk_base(base, dim, max_position_embeddings, orig_max_position_embeddings)
        self.base = float(base)

    def inv_freq(self, device: torch.device) -> torch.Tensor:
        """``[dim / 2]`` fp32 inverse frequencies."""
        exponents = torch.arange(0, self.dim, 2, device=device, dtype=torch.float32) / self.dim
        return 1.0 / (self.base ** exponents)

    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids.float()[..., None] * self.inv_freq(position_ids.device)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last dim."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x [b, s, h, d]`` rotated by ``cos, sin [b, s, d]`` in fp32 math, returned in x's dtype."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)
