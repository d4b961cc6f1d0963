"""Cached op ``torch.ops.trtllm_flash.cached_ssm`` over the flattened batch (interface.py).

``x [1, T, h, p]`` or ``[B, 1, h, p]``, ``dt [.., h]``, ``A, D, dt_bias [h]``, ``B, C [.., g, n]``, the
metadata ``batch_info_host, cu_seqlen, slot_idx, use_initial_states``, the cache
``ssm_state [num_slots, h, p, n]`` fp32 (read and written in place) and ``dt_min, dt_max, chunk_size``.
Returns ``y`` of x's shape and dtype.

The first ``num_prefill`` sequences (tokens ``cu_seqlen[i] .. cu_seqlen[i+1]``) run the chunked SSD from
``ssm_state[slot_idx[i]]`` when ``use_initial_states[i]``, else from zeros, and store their final state
back; the ``num_decode`` one-token sequences after them take one step from their slot's state.

CPU: pure torch (chunked SSD per prefill, the reference step for the decodes), validated. CUDA: the
Triton chunk scan and state-update kernels, both in place on the pool; only ``batch_info_host`` (a CPU
tensor) is read on the host, so a decode step can be captured in a CUDA graph.
"""
from __future__ import annotations

import torch

from trtllm_flash.ops.mamba.chunked import ssd_chunked
from trtllm_flash.ops.mamba.decode_kernel import ssm_decode_
from trtllm_flash.ops.flatten import flatten_tokens
from trtllm_flash.ops.mamba.prefill_kernel import ssd_prefill_
from trtllm_flash.ops.mamba.reference import ssm_step
from trtllm_flash.ops.mamba.validation import check_cached_inputs
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::cached_ssm", mutates_args=("ssm_state",))
def cached_ssm(
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
) -> torch.Tensor:
    check_cached_inputs(
        x, dt, A, B, C, D, dt_bias, batch_info_host, cu_seqlen, slot_idx, use_initial_states, ssm_state, dt_min, dt_max, chunk_size
    )
    shape = x.shape
    x, dt, B, C = flatten_tokens(x, dt, B, C)
    num_prefill, num_prefill_tokens, num_decode = (int(v) for v in batch_info_host.tolist())
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    bounds = cu_seqlen.tolist()
    for i in range(num_prefill):
        start, end, slot = bounds[i], bounds[i + 1], int(slot_idx[i])
        initial = ssm_state[slot : slot + 1] if bool(use_initial_states[i]) else None
        tokens = slice(start, end)
        y_seq, final = ssd_chunked(
            x[None, tokens], dt[None, tokens], A, B[None, tokens], C[None, tokens], D, dt_bias, dt_min, dt_max, chunk_size, initial
        )
        y[tokens] = y_seq[0]
        ssm_state[slot] = final[0]
    decode_slots = slot_idx[num_prefill : num_prefill + num_decode]
    decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    y_dec, new_states = ssm_step(
        ssm_state[decode_slots], x[decode], dt[decode], A, B[decode], C[decode], D, dt_bias, dt_min, dt_max
    )
    y[decode] = y_dec.to(y.dtype)
    ssm_state.index_copy_(0, decode_slots, new_states)
    return y.view(shape)


@cached_ssm.register_fake
def _cached_ssm_fake(
    x, dt, A, B, C, D, dt_bias, batch_info_host, cu_seqlen, slot_idx, use_initial_states, ssm_state, dt_min, dt_max, chunk_size
):
    return x.new_empty(x.shape)


def cached_ssm_fast(
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
) -> torch.Tensor:
    """The CUDA implementation (unvalidated); also runs on CPU tensors under ``TRITON_INTERPRET=1``."""
    shape = x.shape
    x, dt, B, C = flatten_tokens(x, dt, B, C)
    num_prefill, num_prefill_tokens, num_decode = (int(v) for v in batch_info_host.tolist())
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    ssd_prefill_(
        x, dt, A, B, C, D, dt_bias, y, ssm_state, cu_seqlen, slot_idx, use_initial_states, num_prefill, dt_min, dt_max
    )
    decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    ssm_decode_(
        x[decode],
        dt[decode],
        A,
        B[decode],
        C[decode],
        D,
        dt_bias,
        y[decode],
        ssm_state,
        slot_idx[num_prefill : num_prefill + num_decode],
        dt_min,
        dt_max,
    )
    return y.view(shape)


register_fast(cached_ssm, cached_ssm_fast)

