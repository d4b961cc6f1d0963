"""Every resource handler the adapter hands AutoDeploy allocates exactly the tensor our CacheManager
allocates for the same spec (shape and dtype), given AutoDeploy's slot count (max_batch_size + 1),
tokens_per_block as the page size and its block count."""
from __future__ import annotations

import pytest
import torch
from ad_harness import CASES, require_family, allocate, generation, make_cache_config, make_sequence_info, source_node

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


def _assert_same_allocation(ad, specs, initializers):
    ours = CacheManager(specs, max_batch_size=MAX_BATCH, max_seq_len=MAX_SEQ, page_size=PAGE, num_pages=BLOCKS).tensors
    info = make_sequence_info(ad, MAX_SEQ, MAX_BATCH, PAGE, BLOCKS)
    assert list(initializers) == list(specs)
    for name, initializer in initializers.items():
        theirs = allocate(initializer, info)
        assert (tuple(theirs.shape), theirs.dtype) == (tuple(ours[name].shape), ours[name].dtype), name


def test_every_spec_kind_maps_to_the_generations_cache_initializer(autodeploy):
    from trtllm_flash.autodeploy.generations import mapping_module

    if generation(autodeploy) == "cache_config":
        mapping = mapping_module("cache_config")
        initializers = mapping.cache_initializers(SPECS, make_cache_config(autodeploy, PAGE))
        assert all(callable(fn) and not hasattr(fn, "allocate") for fn in initializers.values())
    else:
        from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface as ai

        mapping = mapping_module("resource_handlers")  # the BatchInfo generation uses the same handlers
        initializers = mapping.resource_handlers(SPECS, make_cache_config(autodeploy, PAGE))
        assert type(initializers["kv_full"]) is ai.KVPagedResourceHandler
        assert (initializers["kv_full"].kv_factor, initializers["kv_full"].kv_layout) == (2, "HND")
        assert type(initializers["kv_window"]) is mapping.SlidingWindowRingHandler and not initializers["kv_window"].is_paged
        assert type(initializers["ssm"]) is ai.SSMResourceHandler
        assert type(initializers["conv"]) is ai.CausalConvResourceHandler and initializers["conv"].d_conv == 4
        assert type(initializers["delta"]) is ai.StateResourceHandler
    _assert_same_allocation(autodeploy, SPECS, initializers)


def test_kv_dtype_follows_the_cache_config(autodeploy):
    from trtllm_flash.autodeploy.generations import mapping_module

    mapping = mapping_module("cache_config" if generation(autodeploy) == "cache_config" else "resource_handlers")
    info = make_sequence_info(autodeploy, MAX_SEQ, MAX_BATCH, PAGE, BLOCKS)
    for kv_dtype, expected in ((torch.float16, torch.float16), (None, torch.bfloat16)):
        config = make_cache_config(autodeploy, PAGE, kv_dtype)
        initializer = next(iter((mapping.cache_initializers if generation(autodeploy) == "cache_config" else mapping.resource_handlers)({"kv": SPECS["kv_full"]}, config).values()))
        assert allocate(initializer, info).dtype == expected


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_descriptor_cache_initializers_match_cache_manager(autodeploy, case_id):
    case = CASES[case_id]
    require_family(case)
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry

    from trtllm_flash.autodeploy import register

    register()
    ours = get_descriptor(case.name)
    node = source_node(ours.source_op(), case.make(7, 0))
    initializers = AttentionRegistry.get(case.name).get_cache_initializers(node, make_cache_config(autodeploy, PAGE))
    _assert_same_allocation(autodeploy, ours.cache_specs(node), initializers)
