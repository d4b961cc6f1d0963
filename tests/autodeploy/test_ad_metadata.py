"""The page_table prepare op rebuilds our page table from AutoDeploy's cache_loc / cu_num_pages, and
metadata names are split into SequenceInfo names and derived ones in the cached op's order."""
from __future__ import annotations

import pytest
import torch


def test_page_table_from_autodeploy_paging(autodeploy):
    from ad_harness import activate, generation, get_arg, make_sequence_info, nest
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry

    from trtllm_flash.ops.interface import SENTINEL_PAGE

    descriptor = AttentionRegistry.get("trtllm_flash_attention")
    prepare, num_out, const_args = descriptor.get_prepare_extra_metadata_info(None)
    info = make_sequence_info(autodeploy, max_seq_len=16, max_batch_size=4, page_size=4, num_blocks=10)
    activate(descriptor, info)
    pages = [[7, 0, 9], [3], [5, 2]]
    nest(info, [(0, 0, 10), (1, 0, 2), (2, 4, 1)], dict(enumerate(pages)))
    outputs = prepare(*[get_arg(info, a.name) for a in prepare._schema.arguments if a.name in info.available_args], *const_args)
    assert len(outputs) == num_out
    table = outputs[-1]  # page_table is the attention op's last metadata in every generation
    width = 4 if generation(autodeploy) == "batch_info" else 3  # max_blocks_per_seq there, else the longest list
    assert table.dtype == torch.int32 and tuple(table.shape) == (3, width)  # the batch's rows
    for row, seq_pages in zip(table.tolist(), pages):
        assert row == seq_pages + [SENTINEL_PAGE] * (width - len(seq_pages))


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
