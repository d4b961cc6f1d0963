"""Row argmax op in ``torch.ops.trtllm_flash`` (no cache): ``argmax``.
CPU / eager: ``torch.argmax(logits, dim=-1)``; CUDA: the split-row Triton kernel, equal to it index for index
(first index of the maximum, NaN as the maximum).

``argmax(logits [N, V]) -> [N]`` int64, for float32 / bfloat16 / float16 logits with ``V >= 1``.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.argmax import kernels, reference
from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.dispatch import register_fast


def _check_logits(logits: torch.Tensor) -> None:
    check_float("logits", logits)
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D [N, V], got shape {tuple(logits.shape)}")
    if logits.shape[1] < 1:
        raise ValueError(f"logits need V >= 1 columns, got shape {tuple(logits.shape)}")


@torch.library.custom_op("trtllm_flash::argmax", mutates_args=())
def argmax(logits: torch.Tensor) -> torch.Tensor:
    """``logits [N, V] -> [N]`` int64: the first index of each row's maximum."""
    _check_logits(logits)
    return reference.argmax_reference(logits)


@argmax.register_fake
def _argmax_fake(logits):
    _check_logits(logits)
    return logits.new_empty((logits.shape[0],), dtype=torch.int64)


@register_fast(argmax)
def _argmax_cuda(logits: torch.Tensor) -> torch.Tensor:
    _check_logits(logits)
    return kernels.argmax_triton(logits)


def argmax_rows(logits: torch.Tensor) -> torch.Tensor:
    """What the op computes, called directly: the runtime's sampler runs it once per step outside any
    graph, where torch's custom-op dispatch would add tens of microseconds of host time."""
    _check_logits(logits)
    return kernels.argmax_triton(logits) if logits.is_cuda else reference.argmax_reference(logits)
