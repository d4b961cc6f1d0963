"""Mapping for the ``resource_handlers`` generation: our cache specs as AutoDeploy resource handlers,
our ``page_table`` from :func:`trtllm_flash.autodeploy.metadata.page_table` (width under CUDA-graph
capture from ``max_seq_info_host``).

Mirrors the handler constructors of ``AD/custom_ops/attention_interface.py`` (stored version
46243425432 of the code index, 71,285 chars; the generation main had about February 2026):

=============================================== ==================================================
our spec                                        AutoDeploy handler
=============================================== ==================================================
``PagedKVCache`` (``sliding_window == 0``)      ``KVPagedResourceHandler(num_kv_heads, head_dim,
                                                dtype, kv_factor=2, kv_layout="HND")`` — pages of
                                                TRT-LLM's KVCacheManager, ``[blocks, 2, hkv,
                                                tokens_per_block, d]`` = our layout
``PagedKVCache`` (``sliding_window > 0``)       :class:`SlidingWindowRingHandler` (below)
``StateCache(kind="ssm")``                      ``SSMResourceHandler(h, p, n, dtype)``
``StateCache(kind="conv")``                     ``CausalConvResourceHandler(c, k, dtype)`` (``shape
                                                = (c, k - 1)``)
``StateCache(kind="state")``                    ``StateResourceHandler(*shape, dtype=dtype)``
=============================================== ==================================================

Sliding-window layers: our cached attention keeps a window layer's KV in a fixed ring of
``window_pages(window, page_size)`` pages per *state slot* and needs no page table. AutoDeploy's
KVCacheManager hands out pages from one shared pool, which the ring indexing would overrun, so a
window layer gets its own locally allocated ring tensor ``[max_num_state_slots * ring, 2, hkv,
tokens_per_block, d]`` instead — the same tensor our CacheManager allocates. That memory is outside
the KVCacheManager's ``free_gpu_memory_fraction`` budget (like upstream's unmanaged state handlers)
and is small: ``(window + page) * slots`` tokens per window layer.

KV dtype follows ``kv_cache_config.dtype`` (``"auto"`` = the model's k dtype); state caches keep the
dtype our descriptor asks for (fp32 for SSM / delta-rule state; ``mamba_ssm_cache_dtype`` is not
applied because our kernels accumulate into an fp32 state).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import (
    CausalConvResourceHandler,
    KVPagedResourceHandler,
    ResourceHandler,
    SequenceInfo,
    SSMResourceHandler,
    StateResourceHandler,
)
from trtllm_flash.autodeploy.upstream import AttentionDescriptor
from trtllm_flash.ops.interface import CacheSpec, OpDescriptor, PagedKVCache, StateCache, window_pages


class SlidingWindowRingHandler(ResourceHandler):
    """A sliding-window layer's KV ring: ``ring`` pages of ``page_size`` tokens per state slot.

    Not paged (``is_paged`` False), so AutoDeploy allocates it locally through :meth:`allocate`, the
    way it allocates ``UnpagedResourceHandler`` caches.
    """

    def __init__(self, num_kv_heads: int, head_dim: int, dtype: torch.dtype, sliding_window: int, page_size: int):
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        self.sliding_window = sliding_window
        self.page_size = page_size
        self.ring = window_pages(sliding_window, page_size)

    def allocate(self, sequence_info: SequenceInfo) -> torch.Tensor:
        return torch.zeros(
            sequence_info.max_num_state_slots * self.ring,
            2,
            self.num_kv_heads,
            self.page_size,
            self.head_dim,
            dtype=self.dtype,
            device=sequence_info.device,
        )


def kv_cache_dtype(spec: PagedKVCache, cache_config: Any) -> torch.dtype:
    """``kv_cache_config.dtype`` resolved the way upstream backends do (``"auto"`` -> the spec's dtype)."""
    return AttentionDescriptor.resolve_cache_dtype(getattr(cache_config, "dtype", "auto") or "auto", spec.dtype)


def resource_handler(spec: CacheSpec, cache_config: Any) -> ResourceHandler:
    """The AutoDeploy handler that allocates what our CacheManager allocates for ``spec``."""
    if isinstance(spec, PagedKVCache):
        dtype = kv_cache_dtype(spec, cache_config)
        if spec.sliding_window > 0:
            return SlidingWindowRingHandler(spec.num_kv_heads, spec.head_dim, dtype, spec.sliding_window, cache_config.tokens_per_block)
        return KVPagedResourceHandler(spec.num_kv_heads, spec.head_dim, dtype, kv_factor=2, kv_layout="HND")
    if isinstance(spec, StateCache):
        if spec.kind == "ssm":
            num_heads, head_dim, d_state = spec.shape
            return SSMResourceHandler(num_heads, head_dim, d_state, spec.dtype)
        if spec.kind == "conv":
            conv_dim, state_len = spec.shape
            return CausalConvResourceHandler(conv_dim, state_len + 1, spec.dtype)
        return StateResourceHandler(*spec.shape, dtype=spec.dtype)
    raise TypeError(f"no AutoDeploy resource handler for cache spec {spec!r}")


def resource_handlers(specs: Dict[str, CacheSpec], cache_config: Any) -> Dict[str, ResourceHandler]:
    """``cache_specs(node)`` mapped name by name (the dict order is the cached op's cache order)."""
    return {name: resource_handler(spec, cache_config) for name, spec in specs.items()}


def prepare_info(derived: List[str]) -> Tuple[Optional[Callable], int, list]:
    """``get_prepare_extra_metadata_info``: the page-table op when a descriptor needs ``page_table``."""
    if not derived:
        return None, 0, []
    return torch.ops.trtllm_flash_ad.page_table.default, 1, []


def descriptor_methods(ours: OpDescriptor, derived: List[str]) -> Dict[str, Any]:
    """The generation-specific ``AttentionDescriptor`` class methods for our descriptor ``ours``."""

    def get_prepare_extra_metadata_info(cls, any_source_attn_node):
        return prepare_info(derived)

    def get_cache_initializers(cls, source_attn_node, cache_config):
        return resource_handlers(ours.cache_specs(source_attn_node), cache_config)

    return {
        "get_prepare_extra_metadata_info": classmethod(get_prepare_extra_metadata_info),
        "get_cache_initializers": classmethod(get_cache_initializers),
    }


def page_size(sequence_info: Any) -> int:
    """Tokens per KV page of this generation's ``SequenceInfo``."""
    return int(sequence_info.tokens_per_block)
