"""Source op ``torch.ops.trtllm_flash.attention``: causal GQA attention over a padded batch.

``q [b, s, h, d]``, ``k, v [b, s, hkv, d]`` (``h % hkv == 0``), ``scale``, ``sliding_window`` (0 = full;
``w > 0``: the query at position ``i`` sees keys ``i - w + 1 .. i``) -> ``out [b, s, h, d]`` in q's dtype,
every row attending from position 0. Eager / CPU: the dense fp32 reference (validated). CUDA: the Triton
prefill kernel with an empty cache, each batch row a sequence.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.attention.reference import attention_reference
from trtllm_flash.ops.attention.triton_prefill import paged_prefill
from trtllm_flash.ops.attention.validation import check_source_inputs
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::attention", mutates_args=())
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, sliding_window: int) -> torch.Tensor:
    check_source_inputs(q, k, v, scale, sliding_window)
    return attention_reference(q, k, v, scale, sliding_window).to(q.dtype)


@attention.register_fake
def _attention_fake(q, k, v, scale, sliding_window):
    return q.new_empty(q.shape)


def attention_fast(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, sliding_window: int) -> torch.Tensor:
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    b, s, h, d = q.shape
    hkv = k.shape[2]
    q_flat = q.reshape(b * s, h, d).contiguous()
    k_flat = k.reshape(b * s, hkv, d).contiguous()
    v_flat = v.reshape(b * s, hkv, d).contiguous()
    out = torch.empty_like(q_flat)
    cu_seqlen = torch.arange(0, (b + 1) * s, s, dtype=torch.int32, device=q.device)
    zeros = torch.zeros(b, dtype=torch.int32, device=q.device)
    empty_cache = q.new_empty(1, 2, hkv, 1, d)
    no_pages = torch.zeros(b, 1, dtype=torch.int32, device=q.device)
    paged_prefill(q_flat, k_flat, v_flat, out, empty_cache, cu_seqlen, zeros, zeros, no_pages, b, s, scale, sliding_window)
    return out.view(b, s, h, d)


register_fast(attention, attention_fast)
