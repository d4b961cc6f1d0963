"""Descriptor ``trtllm_flash_attention``: how ``insert_cached_attention`` turns ``attention`` into
``cached_attention`` and which paged KV cache the cache manager allocates."""
from __future__ import annotations

from typing import Dict, List

from torch.fx import Node

from trtllm_flash.ops.interface import CacheSpec, Constant, OpDescriptor, PagedKVCache, fake_tensor, node_arg, register_descriptor


@register_descriptor
class AttentionDescriptor(OpDescriptor):
    """``attention(q, k, v, scale, sliding_window)`` ->
    ``cached_attention(q, k, v, <metadata>, kv_cache, scale, sliding_window)`` with
    ``kv_cache [num_pages, 2, hkv, page_size, d]`` in k's dtype (a per-slot ring when the window is > 0)."""

    name = "trtllm_flash_attention"
    insert_transform = "insert_cached_attention"

    source_op_name = "attention"
    cached_op_name = "cached_attention"
    num_input_args = 3
    metadata = ("batch_info_host", "cu_seqlen", "input_pos", "slot_idx", "page_table")

    @classmethod
    def cache_specs(cls, source_node: Node) -> Dict[str, CacheSpec]:
        k = fake_tensor(source_node, 1, "k")
        window = int(node_arg(source_node, 4, "sliding_window", 0))
        return {"kv_cache": PagedKVCache(int(k.shape[2]), int(k.shape[3]), k.dtype, window)}

    @classmethod
    def constants(cls, source_node: Node) -> List[Constant]:
        return [float(node_arg(source_node, 3, "scale")), int(node_arg(source_node, 4, "sliding_window", 0))]
