"""Every resource handler the adapter hands AutoDeploy allocates exactly the tensor our CacheManager
allocates for the same spec (shape and dtype), given AutoDeploy's slot count (max_batch_size + 1),
tokens_per_block as the page size and its block count."""
from __future__ import annotations

import pytest
import torch
from ad_harness import CASES, require_family, source_node

from trtllm_flash.ops.interface import PagedKVCache, StateCache, get_descriptor
from trtllm_flash.runtime.cache_manager import CacheManager

MAX_BATCH, MAX_SEQ, PAGE, BLOCKS = 3, 64, 16, 9

SPECS = {
    "kv_full": PagedKVCache(num_kv_heads=2, head_dim=8, dtype=torch.bfloat16),
    "kv_window": PagedKVCache(num_kv_heads=2, head_dim=8, dtype=torch.bfloat16, sliding_window=20),
    "ssm": StateCache((2, 4, 8), torch.float32, kind="ssm"),
    "conv": StateCache((6, 3), torch.bfloat16, kind="conv"),
    "delta": StateCache((2, 8, 6), torch.float32, kind="state"),
}


def _sequence_info():
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import SequenceInfo

    info = SequenceInfo(max_seq_len=MAX_SEQ, max_batch_size=MAX_BATCH, tokens_per_block=PAGE)
    info.update_cache_information(num_blocks=BLOCKS)
    return info


def _assert_same_allocation(specs, handlers):
    ours = CacheManager(specs, max_batch_size=MAX_BATCH, max_seq_len=MAX_SEQ, page_size=PAGE, num_pages=BLOCKS).tensors
    info = _sequence_info()
    assert list(handlers) == list(specs)
    for name, handler in handlers.items():
        theirs = handler.allocate(info)
        assert (tuple(theirs.shape), theirs.dtype) == (tuple(ours[name].shape), ours[name].dtype), name


def test_every_spec_kind_maps_to_the_matching_handler(autodeploy):
    from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface as ai
    from tensorrt_llm.llmapi.llm_args import KvCacheConfig

    from trtllm_flash.autodeploy.resources import SlidingWindowRingHandler, resource_handlers

    handlers = resource_handlers(SPECS, KvCacheConfig(tokens_per_block=PAGE))
    assert type(handlers["kv_full"]) is ai.KVPagedResourceHandler
    assert (handlers["kv_full"].kv_factor, handlers["kv_full"].kv_layout) == (2, "HND")
    assert type(handlers["kv_window"]) is SlidingWindowRingHandler and not handlers["kv_window"].is_paged
    assert type(handlers["ssm"]) is ai.SSMResourceHandler
    assert type(handlers["conv"]) is ai.CausalConvResourceHandler and handlers["conv"].d_conv == 4
    assert type(handlers["delta"]) is ai.StateResourceHandler
    _assert_same_allocation(SPECS, handlers)


def test_kv_dtype_follows_kv_cache_config(autodeploy):
    from tensorrt_llm.llmapi.llm_args import KvCacheConfig

    from trtllm_flash.autodeploy.resources import resource_handler

    assert resource_handler(SPECS["kv_full"], KvCacheConfig(dtype="float16")).dtype == torch.float16
    assert resource_handler(SPECS["kv_full"], KvCacheConfig()).dtype == torch.bfloat16


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_descriptor_cache_initializers_match_cache_manager(autodeploy, case_id):
    case = CASES[case_id]
    require_family(case)
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry
    from tensorrt_llm.llmapi.llm_args import KvCacheConfig

    from trtllm_flash.autodeploy import register

    register()
    ours = get_descriptor(case.name)
    node = source_node(ours.source_op(), case.make(7, 0))
    handlers = AttentionRegistry.get(case.name).get_cache_initializers(node, KvCacheConfig(tokens_per_block=PAGE))
    _assert_same_allocation(ours.cache_specs(node), handlers)
