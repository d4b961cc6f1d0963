"""The ``trtllm_flash_ssm`` descriptor read from an exported source node."""
import torch
from mamba_cases import G, H, N, P, random_params, random_tokens

import trtllm_flash.ops.mamba  # noqa: F401  (registers the ops and the descriptor)
from trtllm_flash.ops.interface import StateCache, get_descriptor


class _SSMLayer(torch.nn.Module):
    def forward(self, x, dt, A, B, C, D, dt_bias):
        return torch.ops.trtllm_flash.ssm(x, dt, A, B, C, D, dt_bias, 0.0, float("inf"), 128)


def test_descriptor_reads_shapes_and_constants_from_export():
    x, dt, B, C = random_tokens(1, 6, dtype=torch.bfloat16)
    A, D, dt_bias = random_params()
    graph = torch.export.export(_SSMLayer(), (x, dt, A, B, C, D, dt_bias)).graph
    (node,) = [n for n in graph.nodes if n.target == torch.ops.trtllm_flash.ssm.default]
    desc = get_descriptor("trtllm_flash_ssm")
    assert desc.source_op() is torch.ops.trtllm_flash.ssm
    assert desc.cached_op() is torch.ops.trtllm_flash.cached_ssm.default
    assert desc.insert_transform == "insert_cached_ssm_attention"
    assert desc.num_inputs() == 7
    assert desc.standard_metadata() == ["batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states"]
    assert desc.cache_specs(node) == {"ssm_state": StateCache((H, P, N), torch.float32, kind="ssm")}
    assert desc.constants(node) == [0.0, float("inf"), 128]
    assert G == B.shape[2]
