"""Input checks of the Mamba2 SSM ops (eager / CPU path); each failure is a ``ValueError`` naming the argument."""
from __future__ import annotations

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.metadata import check_metadata


def check_source_inputs(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    dt_min: float,
    dt_max: float,
    chunk_size: int,
) -> None:
    """``x [b, s, h, p]``, ``dt [b, s, h]``, ``B, C [b, s, g, n]`` with ``g`` dividing ``h``, ``A, D, dt_bias [h]``."""
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D [b, s, h, p], got shape {tuple(x.shape)}")
    b, s, h, _ = x.shape
    for name, t in (("x", x), ("dt", dt), ("A", A), ("B", B), ("C", C), ("D", D), ("dt_bias", dt_bias)):
        check_float(name, t)
    if dt.shape != (b, s, h):
        raise ValueError(f"dt must be [b, s, h] = {(b, s, h)}, got {tuple(dt.shape)}")
    if B.dim() != 4 or B.shape[:2] != (b, s) or B.shape[2] == 0 or h % B.shape[2] != 0:
        raise ValueError(f"B must be [{b}, {s}, g, n] with g dividing h = {h}, got {tuple(B.shape)}")
    if C.shape != B.shape:
        raise ValueError(f"C must have B's shape {tuple(B.shape)}, got {tuple(C.shape)}")
    for name, t in (("A", A), ("D", D), ("dt_bias", dt_bias)):
        if t.shape != (h,):
            raise ValueError(f"{name} must be [h] = [{h}], got {tuple(t.shape)}")
    if not dt_min >= 0 or not dt_max >= dt_min:
        raise ValueError(f"dt_min and dt_max must satisfy 0 <= dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


def check_cached_inputs(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    dt_bias: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    ssm_state: torch.Tensor,
    dt_min: float,
    dt_max: float,
    chunk_size: int,
) -> None:
    """The source checks, a flattened ``[1, T]`` or ``[B, 1]`` batch, the metadata and
    ``ssm_state [num_slots, h, p, n]`` fp32."""
    check_source_inputs(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size)
    b, s, h, p = x.shape
    n = B.shape[-1]
    if b != 1 and s != 1:
        raise ValueError(f"x must be a flattened batch [1, T, h, p] or [B, 1, h, p], got shape {tuple(x.shape)}")
    if ssm_state.dim() != 4 or tuple(ssm_state.shape[1:]) != (h, p, n):
        raise ValueError(f"ssm_state must be [num_slots, {h}, {p}, {n}], got shape {tuple(ssm_state.shape)}")
    if ssm_state.dtype != torch.float32:
        raise ValueError(f"ssm_state must be float32, got {ssm_state.dtype}")
    for name, t in (("cu_seqlen", cu_seqlen), ("slot_idx", slot_idx), ("use_initial_states", use_initial_states)):
        if t.dim() != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if use_initial_states.dtype != torch.bool:
        raise ValueError(f"use_initial_states must be bool, got {use_initial_states.dtype}")
    check_metadata(b * s, batch_info_host, cu_seqlen, slot_idx, ssm_state.shape[0])
    num_prefill, _, num_decode = (int(v) for v in batch_info_host.tolist())
    if use_initial_states.numel() < num_prefill + num_decode:
        raise ValueError(f"use_initial_states needs {num_prefill + num_decode} entries, got {use_initial_states.numel()}")
