"""Input checks of the causal-conv ops (eager / CPU path); each failure is a ``ValueError`` naming the argument."""
from __future__ import annotations

from typing import Optional

import torch

from trtllm_flash.ops.dtypes import FLOAT_DTYPES, check_float
from trtllm_flash.ops.metadata import check_metadata

ACTIVATIONS = ("silu", "none")


def check_source_inputs(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], activation: str) -> None:
    """``x [b, s, c]`` float, ``weight [c, 1, k]``, ``bias [c]`` or ``None``, ``activation`` in :data:`ACTIVATIONS`."""
    if x.dim() != 3:
        raise ValueError(f"x must be 3-D [b, s, c], got shape {tuple(x.shape)}")
    check_float("x", x)
    c = x.shape[-1]
    if weight.dim() != 3 or weight.shape[0] != c or weight.shape[1] != 1 or weight.shape[2] < 1:
        raise ValueError(f"weight must be [c, 1, k] with c = {c}, got shape {tuple(weight.shape)}")
    check_float("weight", weight)
    if bias is not None and (bias.shape != (c,) or bias.dtype not in FLOAT_DTYPES):
        raise ValueError(f"bias must be a float [c] = [{c}] tensor or None, got {bias.dtype} {tuple(bias.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def check_cached_inputs(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    conv_state: torch.Tensor,
    activation: str,
) -> None:
    """The source checks, a flattened ``[1, T, c]`` or ``[B, 1, c]`` batch, the metadata and
    ``conv_state [num_slots, c, k-1]`` in x's dtype (k >= 2)."""
    check_source_inputs(x, weight, bias, activation)
    b, s, c = x.shape
    k = weight.shape[-1]
    if b != 1 and s != 1:
        raise ValueError(f"x must be a flattened batch [1, T, c] or [B, 1, c], got shape {tuple(x.shape)}")
    if k < 2:
        raise ValueError(f"weight must have a kernel width k >= 2 for a cached conv, got shape {tuple(weight.shape)}")
    if conv_state.dim() != 3 or tuple(conv_state.shape[1:]) != (c, k - 1):
        raise ValueError(f"conv_state must be [num_slots, {c}, {k - 1}], got shape {tuple(conv_state.shape)}")
    if conv_state.dtype != x.dtype:
        raise ValueError(f"conv_state must have x's dtype {x.dtype}, got {conv_state.dtype}")
    for name, t in (("cu_seqlen", cu_seqlen), ("slot_idx", slot_idx), ("use_initial_states", use_initial_states)):
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if use_initial_states.dtype != torch.bool:
        raise ValueError(f"use_initial_states must be bool, got {use_initial_states.dtype}")
    check_metadata(b * s, batch_info_host, cu_seqlen, slot_idx, conv_state.shape[0])
    num_prefill, _, num_decode = (int(v) for v in batch_info_host.tolist())
    if use_initial_states.numel() < num_prefill + num_decode:
        raise ValueError(f"use_initial_states needs {num_prefill + num_decode} entries, got {use_initial_states.numel()}")
