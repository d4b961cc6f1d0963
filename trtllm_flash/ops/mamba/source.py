"""Source op ``torch.ops.trtllm_flash.ssm``: the Mamba2 SSM over a padded batch from a zero state.

``x [b, s, h, p], dt [b, s, h], A [h] (= -exp(A_log)), B, C [b, s, g, n], D [h], dt_bias [h], dt_min,
dt_max, chunk_size`` -> ``y [b, s, h, p]`` in x's dtype (D skip included, no gate). Eager / CPU: the
pure-torch chunked SSD (validated). CUDA: the Triton chunk scan, each batch row a packed sequence.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.mamba.chunked import ssd_chunked
from trtllm_flash.ops.flatten import flatten_tokens
from trtllm_flash.ops.mamba.prefill_kernel import ssd_prefill_
from trtllm_flash.ops.mamba.validation import check_source_inputs
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::ssm", mutates_args=())
def ssm(
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
) -> torch.Tensor:
    check_source_inputs(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size)
    y, _ = ssd_chunked(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size)
    return y


@ssm.register_fake
def _ssm_fake(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size):
    return x.new_empty(x.shape)


def ssm_fast(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size):
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    b, s, h, p = x.shape
    y = torch.empty(b * s, h, p, dtype=x.dtype, device=x.device)
    cu_seqlen = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device=x.device)
    slots = torch.arange(b, dtype=torch.int64, device=x.device)
    scratch = torch.empty(b, h, p, B.shape[-1], dtype=torch.float32, device=x.device)
    no_initial = torch.zeros(b, dtype=torch.bool, device=x.device)
    x_flat, dt_flat, B_flat, C_flat = flatten_tokens(x, dt, B, C)
    ssd_prefill_(x_flat, dt_flat, A, B_flat, C_flat, D, dt_bias, y, scratch, cu_seqlen, slots, no_initial, b, dt_min, dt_max)
    return y.view(b, s, h, p)


register_fast(ssm, ssm_fast)
