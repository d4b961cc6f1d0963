"""Mapping for the ``BatchInfo`` generation (TensorRT-LLM main from about March 2026; the 1.3.0rc line
once PR #11701 landed).

Mirrors ``AD/custom_ops/attention_interface.py`` at stored version 51834141611 of the code index
(84,756 chars): ``batch_info_host`` is a 12-int host tensor read through ``BatchInfo``
(``[prefill, prefill tokens, extend, extend tokens, decode, decode tokens, max_context_length,
max_blocks_per_seq, block_offset_multiplier, max_batch_size, tokens to gather, gather required]``);
caches are the same resource handlers as in the ``resource_handlers`` generation.

Our cached ops take a 3-int ``batch_info_host`` FIRST, and AutoDeploy passes ``SequenceInfo`` fields
before prepare-op outputs, so here every metadata tensor comes from one prepare op,
:func:`trtllm_flash.autodeploy.metadata.metadata_from_batch_info`: our ``batch_info_host`` =
``BatchInfo.get_absorbed_info()`` (extend requests are prefill continuations for us), copies of
``cu_seqlen`` / ``input_pos`` / ``slot_idx`` / ``use_initial_states``, and ``page_table`` (rows of the
batch, ``max_blocks_per_seq`` wide: this generation's overlap scheduler moves pages on the device after
the host copy, so the host-side page counts are not used).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from trtllm_flash.autodeploy.generations.resource_handlers import page_size, resource_handlers
from trtllm_flash.ops.interface import OpDescriptor

__all__ = ["descriptor_methods", "page_size", "prepare_info"]


def prepare_info(names: List[str]) -> Tuple[Optional[Callable], int, list]:
    """``get_prepare_extra_metadata_info``: the op producing all of ``names`` (our metadata, in order)."""
    return torch.ops.trtllm_flash_ad.metadata_from_batch_info.default, len(names), [",".join(names)]


def descriptor_methods(ours: OpDescriptor, derived: List[str]) -> Dict[str, Any]:
    """The generation-specific ``AttentionDescriptor`` class methods for our descriptor ``ours``."""
    names = list(ours.standard_metadata())

    def get_standard_metadata_args(cls) -> List[str]:
        return []

    def get_prepare_extra_metadata_info(cls, any_source_attn_node):
        return prepare_info(names)

    def get_cache_initializers(cls, source_attn_node, cache_config):
        return resource_handlers(ours.cache_specs(source_attn_node), cache_config)

    return {
        "get_standard_metadata_args": classmethod(get_standard_metadata_args),
        "get_prepare_extra_metadata_info": classmethod(get_prepare_extra_metadata_info),
        "get_cache_initializers": classmethod(get_cache_initializers),
    }
