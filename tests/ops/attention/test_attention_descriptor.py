"""The ``trtllm_flash_attention`` descriptor read off an exported graph."""
import torch
from attention_cases import D, H, HKV

from trtllm_flash.ops.attention import AttentionDescriptor
from trtllm_flash.ops.interface import PagedKVCache, get_descriptor


class TwoAttentions(torch.nn.Module):
    def forward(self, q, k, v):
        full = torch.ops.trtllm_flash.attention(q, k, v, 0.125, 0)
        return torch.ops.trtllm_flash.attention(full, k, v, 0.25, 64)


def source_nodes():
    args = (torch.randn(1, 8, H, D).bfloat16(), torch.randn(1, 8, HKV, D).bfloat16(), torch.randn(1, 8, HKV, D).bfloat16())
    gm = torch.export.export(TwoAttentions(), args).graph_module
    return [n for n in gm.graph.nodes if n.target == torch.ops.trtllm_flash.attention.default]


def test_descriptor_is_registered_with_the_contract():
    d = get_descriptor("trtllm_flash_attention")
    assert d is AttentionDescriptor
    assert d.insert_transform == "insert_cached_attention"
    assert d.num_inputs() == 3
    assert d.standard_metadata() == ["batch_info_host", "cu_seqlen", "input_pos", "slot_idx", "page_table"]
    assert d.source_op() is torch.ops.trtllm_flash.attention
    assert d.cached_op() is torch.ops.trtllm_flash.cached_attention.default


def test_cache_specs_and_constants_from_the_exported_nodes():
    full, windowed = source_nodes()
    assert AttentionDescriptor.cache_specs(full) == {"kv_cache": PagedKVCache(HKV, D, torch.bfloat16, 0)}
    assert AttentionDescriptor.cache_specs(windowed) == {"kv_cache": PagedKVCache(HKV, D, torch.bfloat16, 64)}
    assert AttentionDescriptor.constants(full) == [0.125, 0]
    assert AttentionDescriptor.constants(windowed) == [0.25, 64]
