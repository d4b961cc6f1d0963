"""Cached op ``torch.ops.trtllm_flash.cached_delta_rule`` over the flattened batch (interface.py).

``q, k [1, T, h, dk]`` or ``[B, 1, h, dk]``, ``v`` likewise with dv, ``beta [1, T, h]`` / ``[B, 1, h]``,
the metadata ``batch_info_host, cu_seqlen, slot_idx, use_initial_states``, the cache
``delta_state [num_slots, h, dk, dv]`` fp32 (read and written in place) and the source op's constants
``scale, qk_l2norm_eps, beta_sigmoid`` (see :mod:`.source`). Returns ``o`` of v's shape and dtype.

The first ``num_prefill`` sequences (tokens ``cu_seqlen[i] .. cu_seqlen[i+1]``) start from
``delta_state[slot_idx[i]]`` when ``use_initial_states[i]``, else from zeros, and store their final
state back; the ``num_decode`` one-token sequences after them always continue their slot's state.

CPU: the fp32 reference, validated. CUDA: fla's varlen prefill (initial states gathered from the slots,
final states scattered back with ``index_copy_``) and the in-place Triton decode step; the decode-only
path reads only ``batch_info_host`` (a CPU tensor) on the host, so it can be captured in a CUDA graph.
The options run as :func:`.source.apply_prologue` ahead of the reference and of fla's prefill, and inside
the decode kernel (no extra launch).
"""
from __future__ import annotations

from typing import Optional

import torch

from trtllm_flash.ops.delta_rule.decode_kernel import delta_rule_decode_
from trtllm_flash.ops.delta_rule.fla_prefill import fla_delta_rule
from trtllm_flash.ops.delta_rule.reference import delta_rule_reference, delta_rule_step
from trtllm_flash.ops.delta_rule.source import apply_prologue
from trtllm_flash.ops.delta_rule.validation import check_cached_inputs
from trtllm_flash.ops.flatten import flatten_tokens
from trtllm_flash.ops.dispatch import register_fast


@torch.library.custom_op("trtllm_flash::cached_delta_rule", mutates_args=("delta_state",))
def cached_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    delta_state: torch.Tensor,
    scale: float,
    qk_l2norm_eps: Optional[float] = None,
    beta_sigmoid: bool = False,
) -> torch.Tensor:
    check_cached_inputs(
        q, k, v, beta, batch_info_host, cu_seqlen, slot_idx, use_initial_states, delta_state, qk_l2norm_eps
    )
    shape = v.shape
    q, k, beta = apply_prologue(q, k, beta, qk_l2norm_eps, beta_sigmoid)
    q, k, v, beta = flatten_tokens(q, k, v, beta)
    num_prefill, num_prefill_tokens, num_decode = (int(x) for x in batch_info_host.tolist())
    o = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    bounds = cu_seqlen.tolist()
    for i in range(num_prefill):
        start, end, slot = bounds[i], bounds[i + 1], int(slot_idx[i])
        initial = delta_state[slot : slot + 1] if bool(use_initial_states[i]) else None
        o_seq, final = delta_rule_reference(
            q[None, start:end], k[None, start:end], v[None, start:end], beta[None, start:end], scale, initial
        )
        o[start:end] = o_seq[0]
        delta_state[slot] = final[0]
    decode_slots = slot_idx[num_prefill : num_prefill + num_decode]
    decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
    o[decode], new_states = delta_rule_step(
        delta_state[decode_slots], q[decode], k[decode], v[decode], beta[decode], scale
    )
    delta_state.index_copy_(0, decode_slots, new_states)
    return o.view(shape)


@cached_delta_rule.register_fake
def _cached_delta_rule_fake(
    q,
    k,
    v,
    beta,
    batch_info_host,
    cu_seqlen,
    slot_idx,
    use_initial_states,
    delta_state,
    scale,
    qk_l2norm_eps=None,
    beta_sigmoid=False,
):
    return v.new_empty(v.shape)


def cached_delta_rule_fast(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor,
    delta_state: torch.Tensor,
    scale: float,
    qk_l2norm_eps: Optional[float] = None,
    beta_sigmoid: bool = False,
) -> torch.Tensor:
    """The CUDA implementation (unvalidated). It also runs on CPU tensors under ``TRITON_INTERPRET=1``
    for fp32 inputs (fla's fused-recurrent prefill + our decode kernel), which is how CPU tests cover it."""
    shape = v.shape
    q, k, v, beta = flatten_tokens(q, k, v, beta)
    num_prefill, num_prefill_tokens, num_decode = (int(x) for x in batch_info_host.tolist())
    o = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    if num_prefill > 0:
        prefill = slice(0, num_prefill_tokens)
        slots = slot_idx[:num_prefill]
        cached = delta_state.index_select(0, slots)
        initial = torch.where(use_initial_states[:num_prefill, None, None, None], cached, torch.zeros_like(cached))
        q_prefill, k_prefill, beta_prefill = apply_prologue(
            q[None, prefill], k[None, prefill], beta[None, prefill], qk_l2norm_eps, beta_sigmoid
        )
        o_prefill, final = fla_delta_rule(
            q_prefill,
            k_prefill,
            v[None, prefill],
            beta_prefill,
            scale,
            initial_state=initial,
            cu_seqlens=cu_seqlen[: num_prefill + 1].long(),
        )
        o[prefill] = o_prefill[0]
        delta_state.index_copy_(0, slots, final)
    if num_decode > 0:
        decode = slice(num_prefill_tokens, num_prefill_tokens + num_decode)
        delta_rule_decode_(
            q[decode],
            k[decode],
            v[decode],
            beta[decode],
            o[decode],
            delta_state,
            slot_idx[num_prefill : num_prefill + num_decode],
            scale,
            qk_l2norm_eps,
            beta_sigmoid,
        )
    return o.view(shape)


register_fast(cached_delta_rule, cached_delta_rule_fast)
