"""Source op (eager and the Triton prefill kernel on the CPU) against the token-loop reference; the descriptor."""
import pytest
import torch
from conv_cases import C, K, random_weights, random_x

import trtllm_flash.ops.causal_conv  # noqa: F401  (registers the ops)
from trtllm_flash.ops.causal_conv import causal_conv1d_reference
from trtllm_flash.ops.causal_conv.source import causal_conv1d_fast
from trtllm_flash.ops.interface import StateCache, get_descriptor


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("impl", ["eager", "triton"])
@pytest.mark.parametrize("activation, with_bias", [("silu", True), ("none", False)])
def test_source_op_matches_reference(impl, dtype, tol, activation, with_bias):
    """b = 2 rows of s = 37 (two 32-token blocks) with k = 4; rows must not leak into each other."""
    x = random_x(37, b=2, dtype=dtype, seed=1)
    weight, bias = random_weights(dtype=dtype, seed=1, with_bias=with_bias)
    fn = torch.ops.trtllm_flash.causal_conv1d if impl == "eager" else causal_conv1d_fast
    y = fn(x, weight, bias, activation)
    y_ref, _ = causal_conv1d_reference(x, weight, bias, activation)
    assert y.dtype == dtype and y.shape == x.shape
    torch.testing.assert_close(y.float(), y_ref.float(), atol=tol, rtol=tol)


@pytest.mark.parametrize(
    "args, name",
    [
        (lambda x, w, b: (x[0], w, b, "silu"), "x"),
        (lambda x, w, b: (x, w[:-1], b, "silu"), "weight"),
        (lambda x, w, b: (x, w, b[:3], "silu"), "bias"),
        (lambda x, w, b: (x, w, b, "gelu"), "activation"),
    ],
)
def test_bad_source_input_raises(args, name):
    x = random_x(5)
    weight, bias = random_weights()
    with pytest.raises(ValueError, match=name):
        torch.ops.trtllm_flash.causal_conv1d(*args(x, weight, bias))


class _ConvLayer(torch.nn.Module):
    def forward(self, x, weight, bias):
        return torch.ops.trtllm_flash.causal_conv1d(x, weight, bias, "silu")


def test_descriptor_reads_shapes_and_constants_from_export():
    x = random_x(6, dtype=torch.bfloat16)
    weight, bias = random_weights(dtype=torch.bfloat16)
    graph = torch.export.export(_ConvLayer(), (x, weight, bias)).graph
    (node,) = [n for n in graph.nodes if n.target == torch.ops.trtllm_flash.causal_conv1d.default]
    desc = get_descriptor("trtllm_flash_causal_conv")
    assert desc.source_op() is torch.ops.trtllm_flash.causal_conv1d
    assert desc.cached_op() is torch.ops.trtllm_flash.cached_causal_conv1d.default
    assert desc.insert_transform == "insert_cached_causal_conv"
    assert desc.num_inputs() == 3
    assert desc.standard_metadata() == ["batch_info_host", "cu_seqlen", "slot_idx", "use_initial_states"]
    assert desc.cache_specs(node) == {"conv_state": StateCache((C, K - 1), torch.bfloat16, kind="conv")}
    assert desc.constants(node) == ["silu"]
