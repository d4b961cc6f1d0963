"""``trtllm_flash_delta_rule`` descriptor read from an exported graph's source node."""
import pytest
import torch

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops and the descriptor)
from trtllm_flash.ops.interface import METADATA_NAMES, StateCache, get_descriptor


class DeltaNetCore(torch.nn.Module):
    def __init__(self, options=()):
        super().__init__()
        self.options = options

    def forward(self, q, k, v, beta):
        return torch.ops.trtllm_flash.delta_rule(q, k, v, beta, 0.125, *self.options)


def exported_source_node(options=()):
    args = (torch.randn(2, 7, 3, 12), torch.randn(2, 7, 3, 12), torch.randn(2, 7, 3, 20), torch.rand(2, 7, 3))
    graph = torch.export.export(DeltaNetCore(options), args).graph_module.graph
    desc = get_descriptor("trtllm_flash_delta_rule")
    nodes = [n for n in graph.nodes if n.op == "call_function" and n.target in (desc.source_op(), desc.source_op().default)]
    assert len(nodes) == 1
    return desc, nodes[0]


@pytest.mark.parametrize(
    "options, constants", [((), [0.125, None, False]), ((1e-6, True), [0.125, 1e-6, True]), ((0.5,), [0.125, 0.5, False])]
)
def test_descriptor_reads_shapes_and_constants_from_the_node(options, constants):
    desc, node = exported_source_node(options)
    assert desc.insert_transform == "insert_cached_delta_rule"
    assert desc.cache_specs(node) == {"delta_state": StateCache((3, 12, 20), torch.float32, kind="state")}
    assert desc.constants(node) == constants
    assert desc.num_inputs() == 4
    assert all(name in METADATA_NAMES for name in desc.standard_metadata())


def test_cached_op_schema_matches_descriptor_order():
    """inputs, then metadata, then caches, then constants — the order insert_cached_* builds."""
    desc, node = exported_source_node()
    names = [a.name for a in desc.cached_op()._schema.arguments]
    expected = ["q", "k", "v", "beta"] + desc.standard_metadata() + list(desc.cache_specs(node))
    assert names == expected + ["scale", "qk_l2norm_eps", "beta_sigmoid"]
    assert len(desc.constants(node)) == 3
