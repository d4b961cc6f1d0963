"""The page_table prepare op rebuilds our page table from AutoDeploy's cache_loc / cu_num_pages, and
metadata names are split into SequenceInfo names and derived ones in the cached op's order."""
from __future__ import annotations

import pytest
import torch


def test_page_table_from_autodeploy_paging(autodeploy):
    from ad_harness import activate, make_sequence_info
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry

    from trtllm_flash.ops.interface import SENTINEL_PAGE

    descriptor = AttentionRegistry.get("trtllm_flash_attention")
    prepare, num_out, const_args = descriptor.get_prepare_extra_metadata_info(None)
    info = make_sequence_info(autodeploy, max_seq_len=16, max_batch_size=4, page_size=4, num_blocks=10)
    activate(descriptor, info)
    pages = [[7, 0, 9], [3], [5, 2]]
    info.nest_sequences([[1] * 10, [1] * 2, [1]], input_pos=[0, 0, 4], cache_loc=sum(pages, []), pages_per_seq=[3, 1, 2], slot_idx=[0, 1, 2])
    (table,) = prepare(*[info._get_arg(a.name) for a in prepare._schema.arguments], *const_args)
    assert table.dtype == torch.int32 and tuple(table.shape) == (3, 3)  # the batch's rows, its longest page list
    for row, seq_pages in zip(table.tolist(), pages):
        assert row == seq_pages + [SENTINEL_PAGE] * (3 - len(seq_pages))


def test_split_metadata_keeps_the_cached_op_order(autodeploy):
    from trtllm_flash.autodeploy.metadata import split_metadata

    assert split_metadata(["batch_info_host", "cu_seqlen", "input_pos", "slot_idx", "page_table"]) == (
        ["batch_info_host", "cu_seqlen", "input_pos", "slot_idx"],
        ["page_table"],
    )
    with pytest.raises(ValueError, match="must come after"):
        split_metadata(["page_table", "slot_idx"])
    with pytest.raises(ValueError, match="unknown metadata"):
        split_metadata(["seq_len"])


def test_page_table_without_a_full_capacity_transient():
    """Only the batch's rows, only its longest page list wide (the old op built max_batch_size x
    max_blocks_per_seq every forward); a CUDA-graph capture would take the given capture width."""
    from trtllm_flash.autodeploy.metadata import build_page_table

    cu = torch.tensor([0, 2, 3] + [3] * 381, dtype=torch.int32)  # 384-sequence capacity, 2 live sequences
    cache_loc = torch.arange(100, dtype=torch.int32)
    table = build_page_table(2, cu, cu.clone(), cache_loc, capture_width=65536)
    assert table.tolist() == [[0, 1], [2, 0]]
