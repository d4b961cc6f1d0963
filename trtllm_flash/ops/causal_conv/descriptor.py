"""Descriptor ``trtllm_flash_causal_conv``: how ``insert_cached_causal_conv`` turns ``causal_conv1d`` into
``cached_causal_conv1d`` and which per-sequence state the cache manager allocates."""
from __future__ import annotations

from typing import Dict, List

from torch.fx import Node

from trtllm_flash.ops.interface import CacheSpec, Constant, OpDescriptor, StateCache, fake_tensor, node_arg, register_descriptor


@register_descriptor
class CausalConvDescriptor(OpDescriptor):
    """``causal_conv1d(x, weight, bias, activation)`` ->
    ``cached_causal_conv1d(x, weight, bias, <metadata>, conv_state, activation)`` with
    ``conv_state [num_slots, c, k-1]`` in x's dtype."""

    name = "trtllm_flash_causal_conv"
    insert_transform = "insert_cached_causal_conv"

    source_op_name = "causal_conv1d"
    cached_op_name = "cached_causal_conv1d"
    num_input_args = 3
    metadata = ("batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states")

    @classmethod
    def cache_specs(cls, source_node: Node) -> Dict[str, CacheSpec]:
        x = fake_tensor(source_node, 0, "x")
        k = fake_tensor(source_node, 1, "weight").shape[-1]
        return {"conv_state": StateCache((int(x.shape[-1]), int(k) - 1), x.dtype, kind="conv")}

    @classmethod
    def constants(cls, source_node: Node) -> List[Constant]:
        return [str(node_arg(source_node, 3, "activation"))]
