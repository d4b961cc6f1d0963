"""The page_table prepare op rebuilds our page table from AutoDeploy's cache_loc / cu_num_pages, and
metadata names are split into SequenceInfo names and derived ones in the cached op's order."""
from __future__ import annotations

import pytest
import torch


def test_page_table_from_autodeploy_paging(autodeploy):
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import SequenceInfo

    import trtllm_flash.autodeploy.metadata  # noqa: F401  (defines the op)
    from trtllm_flash.ops.interface import SENTINEL_PAGE

    info = SequenceInfo(max_seq_len=16, max_batch_size=4, tokens_per_block=4)
    info.update_cache_information(num_blocks=10)
    pages = [[7, 0, 9], [3], [5, 2]]
    info.nest_sequences([[1] * 10, [1] * 2, [1]], input_pos=[0, 0, 4], cache_loc=sum(pages, []), pages_per_seq=[3, 1, 2], slot_idx=[0, 1, 2])
    (table,) = torch.ops.trtllm_flash_ad.page_table(info.get_arg("cu_num_pages"), info.get_arg("cache_loc"), info.get_arg("max_seq_info_host"))
    assert table.dtype == torch.int32 and tuple(table.shape) == (4, info.max_blocks_per_seq)
    for row, seq_pages in zip(table.tolist(), pages):
        assert row == seq_pages + [SENTINEL_PAGE] * (4 - len(seq_pages))


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
