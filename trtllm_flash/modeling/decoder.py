"""One decoder layer: ``input_layernorm`` -> mixer -> residual, then (if it has one) ``pre_ffn_layernorm`` -> ``ffn``
-> residual. The mixer attribute names follow the published checkpoints: ``self_attn`` ("a"), ``mamba``
("m" / "m2"), ``gla`` ("deltanet"); an "f" layer has only the FFN part."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from trtllm_flash.config import MAMBA_TYPES, NemotronFlashConfig
from trtllm_flash.modeling.attention import NemotronFlashAttention
from trtllm_flash.modeling.cache import NemotronFlashCache
from trtllm_flash.modeling.deltanet import DeltaNet
from trtllm_flash.modeling.mamba2 import NemotronFlashMamba2
from trtllm_flash.modeling.mlp import NemotronFlashMLP
from trtllm_flash.modeling.norms import RMSNorm


class NemotronFlashDecoderLayer(nn.Module):
    """Layer ``layer_idx`` of kind ``config.layer_types[layer_idx]``; ``hidden [b, s, hidden] -> [b, s, hidden]``."""

    def __init__(self, config: NemotronFlashConfig, layer_idx: int):
        super().__init__()
        self.layer_type = config.layer_types[layer_idx]
        self.mixer_name: Optional[str] = None
        if self.layer_type != "f":
            self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            if self.layer_type == "a":
                self.mixer_name, self.self_attn = "self_attn", NemotronFlashAttention(config, layer_idx)
            elif self.layer_type in MAMBA_TYPES:
                self.mixer_name, self.mamba = "mamba", NemotronFlashMamba2(config, layer_idx)
            else:
                self.mixer_name, self.gla = "gla", DeltaNet(config, layer_idx)
        self.has_ffn = self.layer_type == "f" or config.mixer_has_ffn
        if self.has_ffn:
            self.pre_ffn_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            self.ffn = NemotronFlashMLP(config)

    def forward(self, hidden_states: torch.Tensor, position_ids: torch.Tensor,
                cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        if self.mixer_name is not None:
            normed = self.input_layernorm(hidden_states)
            if self.mixer_name == "self_attn":
                mixed = self.self_attn(normed, position_ids=position_ids, cache=cache)
            else:
                mixed = getattr(self, self.mixer_name)(normed, cache=cache)
            hidden_states = hidden_states + mixed
        if self.has_ffn:
            hidden_states = hidden_states + self.ffn(self.pre_ffn_layernorm(hidden_states))
        return hidden_states
