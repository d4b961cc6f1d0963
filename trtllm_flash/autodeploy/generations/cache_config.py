"""Mapping for the ``cache_config`` generation (the one TensorRT-LLM 1.2.x ships, docs/AUTODEPLOY.md).

Mirrors ``AD/custom_ops/attention_interface.py`` at stored version 18438348684 of the code index
(55,558 chars; ``CacheConfig(dtype, mamba_dtype, delta_dtype)``): a descriptor's
``get_cache_initializers(source_attn_node, cache_config)`` returns closures ``fn(sequence_info) -> Tensor``
that AutoDeploy calls once to allocate each cache, ``is_paged()`` is abstract, buffers
(``get_global_buffer_initializers``, default none) come between caches and constants, and the
``SequenceInfo`` sizes caches with ``page_size``, ``num_pages`` and ``max_state_slots``
(``max_batch_size + 1``).

==================================== =======================================================
our spec                             closure allocates (``si`` = the ``SequenceInfo``)
==================================== =======================================================
``PagedKVCache`` (full attention)    ``[si.num_pages, 2, hkv, si.page_size, d]``, dtype
                                     ``cache_config.dtype`` or the model's k dtype
``PagedKVCache`` (sliding window)    ``[si.max_state_slots * window_pages(w, si.page_size), 2,
                                     hkv, si.page_size, d]`` (our per-slot ring)
``StateCache``                       ``[si.max_state_slots, *shape]`` in the spec's dtype
==================================== =======================================================

Exactly what our CacheManager allocates for ``max_batch_size`` sequences. ``page_table`` comes from
:func:`trtllm_flash.autodeploy.metadata.page_table_from_capacity` (this ``SequenceInfo`` has no
``max_seq_info``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from trtllm_flash.ops.interface import CacheSpec, OpDescriptor, PagedKVCache, StateCache, window_pages

#: ``fn(sequence_info) -> Tensor``, upstream's ``GetCacheCallable``
CacheInitializer = Callable[[Any], torch.Tensor]


def kv_cache_dtype(spec: PagedKVCache, cache_config: Any) -> torch.dtype:
    """``cache_config.dtype`` (a ``torch.dtype`` or None in this generation), else the spec's dtype."""
    dtype = getattr(cache_config, "dtype", None)
    return dtype if isinstance(dtype, torch.dtype) else spec.dtype


def cache_initializer(spec: CacheSpec, cache_config: Any) -> CacheInitializer:
    """The closure that allocates what our CacheManager allocates for ``spec``."""
    if isinstance(spec, PagedKVCache):
        dtype = kv_cache_dtype(spec, cache_config)

        def allocate_kv(si) -> torch.Tensor:
            pages = si.num_pages if spec.sliding_window == 0 else si.max_state_slots * window_pages(spec.sliding_window, si.page_size)
            return torch.zeros(pages, 2, spec.num_kv_heads, si.page_size, spec.head_dim, dtype=dtype, device=si.device)

        return allocate_kv
    if isinstance(spec, StateCache):

        def allocate_state(si) -> torch.Tensor:
            return torch.zeros(si.max_state_slots, *spec.shape, dtype=spec.dtype, device=si.device)

        return allocate_state
    raise TypeError(f"no AutoDeploy cache initializer for cache spec {spec!r}")


def cache_initializers(specs: Dict[str, CacheSpec], cache_config: Any) -> Dict[str, CacheInitializer]:
    """``cache_specs(node)`` mapped name by name (the dict order is the cached op's cache order)."""
    return {name: cache_initializer(spec, cache_config) for name, spec in specs.items()}


def prepare_info(derived: List[str]) -> Tuple[Optional[Callable], int, list]:
    """``get_prepare_extra_metadata_info``: the page-table op when a descriptor needs ``page_table``."""
    if not derived:
        return None, 0, []
    return torch.ops.trtllm_flash_ad.page_table_from_capacity.default, 1, []


def descriptor_methods(ours: OpDescriptor, derived: List[str]) -> Dict[str, Any]:
    """The generation-specific ``AttentionDescriptor`` class methods for our descriptor ``ours``."""

    def is_paged(cls) -> bool:
        # every op of ours runs on a paged SequenceInfo (the insertion transform asserts
        # ``descriptor.is_paged()`` whenever ``cm.info.is_paged``, for state caches too)
        return True

    def get_prepare_extra_metadata_info(cls, any_source_attn_node):
        return prepare_info(derived)

    def get_cache_initializers(cls, source_attn_node, cache_config):
        return cache_initializers(ours.cache_specs(source_attn_node), cache_config)

    return {
        "is_paged": classmethod(is_paged),
        "get_prepare_extra_metadata_info": classmethod(get_prepare_extra_metadata_info),
        "get_cache_initializers": classmethod(get_cache_initializers),
    }


def page_size(sequence_info: Any) -> int:
    """Tokens per KV page of this generation's ``SequenceInfo``."""
    return int(sequence_info.page_size)
