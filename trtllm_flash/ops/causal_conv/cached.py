"""Cached op ``torch.ops.trtllm_flash.cached_causal_conv1d`` over the flattened batch (interface.py).

``x [1, T, c]`` or ``[B, 1, c]``, ``weight [c, 1, k]``, ``bias [c]`` or ``None``, the metadata
``batch_info_host, cu_seqlen, slot_idx, use_initial_states``, the cache ``conv_state [num_slots, c, k-1]``
(x's dtype; each sequence's last k-1 inputs before activation, oldest first; read and written in place)
and ``activation``. Returns ``y`` of x's shape and dtype.

Prefill sequence ``i`` sees ``conv_state[slot_idx[i]]`` as the inputs before its first token when
``use_initial_states[i]`` (else zeros) and stores its last k-1 inputs back (a prefill shorter than k-1
keeps the newest part of the old window); decode sequences take one step and shift their window.

CPU: the fp32 reference, validated. CUDA: the Triton kernels of :mod:`.kernels`; only ``batch_info_host``
(a CPU tensor) is read on the host, so a decode step can be captured in a CUDA graph.
"""
from __future__ import annotations

from typing import Optional

import torch

from trtllm_flash.ops.causal_conv.kernels import conv_decode_, conv_prefill, store_conv_windows_
from trtllm_flash.ops.causal_conv.reference import causal_conv1d_reference, conv_step
from trtllm_flash.ops.causal_conv.validation import check_cached_inputs
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::cached_causal_conv1d", mutates_args=("conv_state",))
def cached_causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    conv_state: torch.Tensor,
    activation: str,
) -> torch.Tensor:
    check_cached_inputs(x, weight, bias, batch_info_host, cu_seqlen, slot_idx, use_initial_states, conv_state, activation)
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    num_prefill, num_prefill_tokens, num_decode = (int(v) for v in batch_info_host.tolist())
    y = torch.empty_like(x)
    bounds = cu_seqlen.tolist()
    for i in range(num_prefill):
        start, end, slot = bounds[i], bounds[i + 1], int(slot_idx[i])
        initial = conv_state[slot : slot + 1] if bool(use_initial_states[i]) else None
        y_seq, window = causal_conv1d_reference(x[None, start:end], weight, bias, activation, initial)
        y[start:end] = y_seq[0]
        conv_state[slot] = window[0]
    decode_slots = slot_idx[num_prefill : num_prefill + num_decode]
    decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    y_dec, windows = conv_step(conv_state[decode_slots], x[decode], weight, bias, activation)
    y[decode] = y_dec.to(y.dtype)
    conv_state.index_copy_(0, decode_slots, windows.to(conv_state.dtype))
    return y.view(shape)


@cached_causal_conv1d.register_fake
def _cached_causal_conv1d_fake(x, weight, bias, batch_info_host, cu_seqlen, slot_idx, use_initial_states, conv_state, activation):
    return x.new_empty(x.shape)


def cached_causal_conv1d_fast(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    conv_state: torch.Tensor,
    activation: str,
) -> torch.Tensor:
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    if x.stride(-1) != 1:
        x = x.contiguous()
    weight = weight.contiguous()
    num_prefill, num_prefill_tokens, num_decode = (int(v) for v in batch_info_host.tolist())
    y = torch.empty_like(x)
    if num_prefill > 0:
        longest_possible = num_prefill_tokens - (num_prefill - 1)
        conv_prefill(
            x, weight, bias, y, cu_seqlen, num_prefill, longest_possible, activation, conv_state, slot_idx, use_initial_states
        )
        store_conv_windows_(x, conv_state, cu_seqlen, slot_idx, use_initial_states, num_prefill)
    decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    conv_decode_(x[decode], weight, bias, y[decode], conv_state, slot_idx[num_prefill : num_prefill + num_decode], activation)
    return y.view(shape)


register_fast(cached_causal_conv1d, cached_causal_conv1d_fast)
