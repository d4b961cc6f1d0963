"""RoPE source op in ``torch.ops.trtllm_flash`` (no cache): ``rope(q, k, cos, sin) -> (q_out, k_out)``.
CPU / eager: the validated fp32 reference; CUDA: one Triton launch for q and k together (no re-validation:
the fake impl validates at export / trace time).

``q [b, s, h, d]``, ``k [b, s, hkv, d]`` (bsnd, any strides, h may differ from hkv, d even),
``cos, sin [b, s, d]`` float32 (the rotary embedding's ``cat(freqs, freqs)`` cos / sin). Returns new contiguous
``q_out [b, s, h, d]`` of q's dtype and ``k_out [b, s, hkv, d]`` of k's dtype: ``x * cos + rotate_half(x) * sin``
in fp32 math.
"""
from __future__ import annotations

from typing import Tuple

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.rope import kernels, reference
from trtllm_flash.ops.dispatch import register_fast


def _check_inputs(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k)):
        check_float(name, t)
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D [b, s, heads, d], got shape {tuple(t.shape)}")
    b, s, _, d = q.shape
    if k.shape[:2] != q.shape[:2] or k.shape[3] != d:
        raise ValueError(f"k must be [{b}, {s}, hkv, {d}] (q's b, s and d), got shape {tuple(k.shape)}")
    if d == 0 or d % 2:
        raise ValueError(f"q's head dim d must be even and positive, got {d}")
    for name, t in (("cos", cos), ("sin", sin)):
        if t.dtype != torch.float32:
            raise ValueError(f"{name} must be float32, got {t.dtype}")
        if t.shape != (b, s, d):
            raise ValueError(f"{name} must be [{b}, {s}, {d}] (q's b, s, d), got shape {tuple(t.shape)}")


@torch.library.custom_op("trtllm_flash::rope", mutates_args=())
def rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rotate-half RoPE of q and k by the same ``cos, sin``; see the module docstring."""
    _check_inputs(q, k, cos, sin)
    q_out, k_out = reference.rope_reference(q, k, cos, sin)
    return q_out.contiguous(), k_out.contiguous()


@rope.register_fake
def _rope_fake(q, k, cos, sin):
    # validating here too makes a bad call fail at export / trace time, so the CUDA path can skip it
    _check_inputs(q, k, cos, sin)
    return q.new_empty(q.shape), k.new_empty(k.shape)


register_fast(rope, kernels.rope_triton)
