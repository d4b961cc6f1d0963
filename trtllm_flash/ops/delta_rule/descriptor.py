"""Descriptor ``trtllm_flash_delta_rule``: how ``insert_cached_delta_rule`` turns ``delta_rule`` into
``cached_delta_rule`` and which per-sequence state the cache manager allocates."""
from __future__ import annotations

from typing import Dict, List

import torch
from torch.fx import Node

from trtllm_flash.ops.interface import CacheSpec, Constant, OpDescriptor, StateCache, fake_tensor, node_arg, register_descriptor


@register_descriptor
class DeltaRuleDescriptor(OpDescriptor):
    """``delta_rule(q, k, v, beta, scale[, qk_l2norm_eps, beta_sigmoid])`` -> ``cached_delta_rule(q, k, v, beta,
    <metadata>, delta_state, scale, qk_l2norm_eps, beta_sigmoid)`` with ``delta_state [num_slots, h, dk, dv]``
    fp32; the options default to None / False (q, k normalised and beta in (0, 1) by the graph)."""

    name = "trtllm_flash_delta_rule"
    insert_transform = "insert_cached_delta_rule"

    source_op_name = "delta_rule"
    cached_op_name = "cached_delta_rule"
    num_input_args = 4
    metadata = ("batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states")

    @classmethod
    def cache_specs(cls, source_node: Node) -> Dict[str, CacheSpec]:
        _, _, num_heads, dk = fake_tensor(source_node, 0, "q").shape
        dv = fake_tensor(source_node, 2, "v").shape[-1]
        return {"delta_state": StateCache((int(num_heads), int(dk), int(dv)), torch.float32, kind="state")}

    @classmethod
    def constants(cls, source_node: Node) -> List[Constant]:
        eps = node_arg(source_node, 5, "qk_l2norm_eps")
        return [
            float(node_arg(source_node, 4, "scale")),
            None if eps is None else float(eps),
            bool(node_arg(source_node, 6, "beta_sigmoid", False)),
        ]
