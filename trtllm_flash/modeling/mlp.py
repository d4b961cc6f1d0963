"""FFN (``ffn``): SwiGLU ``down(silu(gate(x)) * up(x))`` or squared ReLU ``down(relu(up(x))^2)``."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from trtllm_flash.config import NemotronFlashConfig


class NemotronFlashMLP(nn.Module):
    """``x [b, s, hidden] -> [b, s, hidden]`` through width ``config.ffn_dim``; ``gate_proj`` only for silu."""

    def __init__(self, config: NemotronFlashConfig):
        super().__init__()
        self.act = config.mlp_hidden_act
        if self.act == "silu":
            self.gate_proj = nn.Linear(config.hidden_size, config.ffn_dim, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.ffn_dim, bias=False)
        self.down_proj = nn.Linear(config.ffn_dim, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act == "silu":
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return self.down_proj(torch.relu(self.up_proj(x)).square())
