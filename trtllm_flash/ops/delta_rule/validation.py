"""Input checks of the delta-rule ops (eager / CPU path); each failure is a ``ValueError`` naming the argument."""
from __future__ import annotations

from typing import Optional

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.metadata import check_metadata


def check_source_inputs(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, qk_l2norm_eps: Optional[float] = None
) -> None:
    """``q, k [b, s, h, dk]``, ``v [b, s, h, dv]`` of one float dtype, ``beta [b, s, h]`` float,
    ``qk_l2norm_eps`` None or >= 0."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D [b, s, h, d], got shape {tuple(t.shape)}")
        check_float(name, t)
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {tuple(q.shape)}, got {tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be [b, s, h, dv] with [b, s, h] = {tuple(q.shape[:3])}, got {tuple(v.shape)}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k and v must share one dtype, got q {q.dtype}, k {k.dtype}, v {v.dtype}")
    if beta.shape != q.shape[:3]:
        raise ValueError(f"beta must be [b, s, h] = {tuple(q.shape[:3])}, got {tuple(beta.shape)}")
    check_float("beta", beta)
    if qk_l2norm_eps is not None and not qk_l2norm_eps >= 0:
        raise ValueError(f"qk_l2norm_eps must be None or >= 0, got {qk_l2norm_eps}")


def check_cached_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    delta_state: torch.Tensor,
    qk_l2norm_eps: Optional[float] = None,
) -> None:
    """The source checks, a flattened ``[1, T]`` or ``[B, 1]`` batch, the metadata and
    ``delta_state [num_slots, h, dk, dv]`` fp32."""
    check_source_inputs(q, k, v, beta, qk_l2norm_eps)
    b, s, h, dk = q.shape
    dv = v.shape[-1]
    if b != 1 and s != 1:
        raise ValueError(f"q must be a flattened batch [1, T, h, dk] or [B, 1, h, dk], got shape {tuple(q.shape)}")
    if delta_state.dim() != 4 or tuple(delta_state.shape[1:]) != (h, dk, dv):
        raise ValueError(f"delta_state must be [num_slots, {h}, {dk}, {dv}], got shape {tuple(delta_state.shape)}")
    if delta_state.dtype != torch.float32:
        raise ValueError(f"delta_state must be float32, got {delta_state.dtype}")
    for name, t in (("cu_seqlen", cu_seqlen), ("slot_idx", slot_idx), ("use_initial_states", use_initial_states)):
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if use_initial_states.dtype != torch.bool:
        raise ValueError(f"use_initial_states must be bool, got {use_initial_states.dtype}")
    check_metadata(b * s, batch_info_host, cu_seqlen, slot_idx, delta_state.shape[0])
    num_prefill, _, num_decode = (int(x) for x in batch_info_host.tolist())
    if use_initial_states.numel() < num_prefill + num_decode:
        raise ValueError(
            f"use_initial_states needs {num_prefill + num_decode} entries, got {use_initial_states.numel()}"
        )
