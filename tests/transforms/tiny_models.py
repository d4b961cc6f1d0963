"""Hand-made miniature models that call the source ops directly, to test each pass on a small graph."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import trtllm_flash.ops  # noqa: F401

VOCAB, HIDDEN, HEADS = 37, 16, 2


class DeltaBlock(nn.Module):
    """Pre-norm residual block with a delta-rule mixer whose q/k/v/b projections share their input."""

    def __init__(self):
        super().__init__()
        self.norm_weight = nn.Parameter(1 + 0.1 * torch.randn(HIDDEN))
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(HIDDEN, HIDDEN, bias=False) for _ in range(3))
        self.b_proj = nn.Linear(HIDDEN, HEADS, bias=False)
        self.o_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)

    def forward(self, residual: torch.Tensor) -> torch.Tensor:
        x = torch.ops.trtllm_flash.rms_norm(residual, self.norm_weight, 1e-5)
        b, s, _ = x.shape
        q = torch.ops.trtllm_flash.l2norm(self.q_proj(x).view(b, s, HEADS, -1), 1e-6)
        k = torch.ops.trtllm_flash.l2norm(self.k_proj(x).view(b, s, HEADS, -1), 1e-6)
        v = F.silu(self.v_proj(x)).view(b, s, HEADS, -1)
        beta = torch.sigmoid(self.b_proj(x))
        o = torch.ops.trtllm_flash.delta_rule(q, k, v, beta, (HIDDEN // HEADS) ** -0.5)
        return residual + self.o_proj(o.reshape(b, s, HIDDEN))


class TinyDeltaLM(nn.Module):
    """embed -> 2 delta blocks -> norm -> lm_head with logits divided by the lm_head row norms, fp32;
    a Mamba-style ``-exp(A_log)`` scales the embeddings so fuse_mamba_a_log has something to fold."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList([DeltaBlock() for _ in range(2)])
        self.A_log = nn.Parameter(torch.randn(HIDDEN) * 0.1)
        self.final_weight = nn.Parameter(1 + 0.1 * torch.randn(HIDDEN))
        self.lm_head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(input_ids) * (-torch.exp(self.A_log.float()))
        for layer in self.layers:
            h = layer(h)
        h = torch.ops.trtllm_flash.rms_norm(h, self.final_weight, 1e-5)
        return (self.lm_head(h) / self.lm_head.weight.norm(p=2, dim=1)).float()


def tiny_delta_lm(seed: int = 0) -> TinyDeltaLM:
    torch.manual_seed(seed)
    return TinyDeltaLM().eval()
