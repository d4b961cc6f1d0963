"""Per-layer inference state of the reference model, so that each new token costs O(1) recurrent work.

``NemotronFlashCache`` holds one entry per decoder layer (``None`` until the layer first runs; FFN layers stay
``None``). Every sequence of the batch has the same length (no padding). A forward with a cache continues the
sequences: one token (decode) or several (chunked prefill) from where the previous call stopped.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Union

import torch


@dataclass
class AttentionState:
    """Keys and values of the tokens a future query may still see.

    ``key [b, t, hkv, d]``, ``value [b, t, hkv, dv]`` (after k-norm and RoPE); ``start``: sequence index of the first
    kept token. Full attention keeps everything (``start == 0``); a layer with window w keeps the last w - 1.
    """

    key: torch.Tensor
    value: torch.Tensor
    start: int

    @property
    def end(self) -> int:
        """Number of tokens seen so far (sequence index of the next token)."""
        return self.start + self.key.shape[1]


@dataclass
class MambaState:
    """Mamba2: ``conv_window [b, conv_dim, d_conv - 1]`` (last xBC inputs, model dtype) and
    ``ssm [b, heads, headdim, d_state]`` fp32."""

    conv_window: torch.Tensor
    ssm: torch.Tensor


@dataclass
class DeltaNetState:
    """DeltaNet: q/k/v conv windows ``[b, hidden, 3]`` (model dtype) and ``recurrent [b, heads, dk, dv]`` fp32."""

    q_window: torch.Tensor
    k_window: torch.Tensor
    v_window: torch.Tensor
    recurrent: torch.Tensor


LayerState = Union[AttentionState, MambaState, DeltaNetState]


class NemotronFlashCache:
    """One :data:`LayerState` (or ``None``) per decoder layer plus the number of tokens seen."""

    def __init__(self, num_layers: int):
        self.layers: List[Optional[LayerState]] = [None] * num_layers
        self.seen_tokens = 0

    def __len__(self) -> int:
        return len(self.layers)
