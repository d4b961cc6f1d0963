"""Descriptor ``trtllm_flash_ssm``: how ``insert_cached_ssm_attention`` turns ``ssm`` into ``cached_ssm``
and which per-sequence state the cache manager allocates."""
from __future__ import annotations

from typing import Dict, List

import torch
from torch.fx import Node

from trtllm_flash.ops.interface import CacheSpec, Constant, OpDescriptor, StateCache, fake_tensor, node_arg, register_descriptor


@register_descriptor
class SSMDescriptor(OpDescriptor):
    """``ssm(x, dt, A, B, C, D, dt_bias, dt_min, dt_max, chunk_size)`` ->
    ``cached_ssm(x, dt, A, B, C, D, dt_bias, <metadata>, ssm_state, dt_min, dt_max, chunk_size)`` with
    ``ssm_state [num_slots, h, p, n]`` fp32."""

    name = "trtllm_flash_ssm"
    insert_transform = "insert_cached_ssm_attention"

    source_op_name = "ssm"
    cached_op_name = "cached_ssm"
    num_input_args = 7
    metadata = ("batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states")

    @classmethod
    def cache_specs(cls, source_node: Node) -> Dict[str, CacheSpec]:
        _, _, num_heads, head_dim = fake_tensor(source_node, 0, "x").shape
        d_state = fake_tensor(source_node, 3, "B").shape[-1]
        return {"ssm_state": StateCache((int(num_heads), int(head_dim), int(d_state)), torch.float32, kind="ssm")}

    @classmethod
    def constants(cls, source_node: Node) -> List[Constant]:
        return [
            float(node_arg(source_node, 7, "dt_min")),
            float(node_arg(source_node, 8, "dt_max")),
            int(node_arg(source_node, 9, "chunk_size")),
        ]
