"""Passes that need the real layer layout (RoPE per attention layer, DeltaNet's three short convs), run on
the exported tiny preset: the rewrite happened (node counts, cache count) and the logits are unchanged."""
import operator

import pytest
import torch

from trtllm_flash.export import export_model
from trtllm_flash.loading import load_model
from trtllm_flash.ops.interface import get_descriptor
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.graph_utils import find_op_nodes
from trtllm_flash.transforms.registry import get_transform


def run_pass(name, gm, **overrides):
    config = merge_transforms({name: overrides})[name]
    return get_transform(name)(config).apply(gm, BuildContext())


def count(gm, op):
    return len(find_op_nodes(gm, op))


@pytest.fixture(scope="module")
def model():
    return load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()


@pytest.fixture
def gm(model):
    return export_model(model)


@pytest.fixture(scope="module")
def batch():
    ids = torch.randint(3, 500, (2, 6), generator=torch.Generator().manual_seed(0))
    return ids, torch.arange(6).expand(2, 6)


def logits(gm, batch):
    with torch.no_grad():
        return gm(input_ids=batch[0], position_ids=batch[1])


def test_cse_builds_the_rope_tables_once_for_all_attention_layers(model, gm, batch):
    attention_layers = list(model.config.layer_types).count("a")
    assert attention_layers == 2 and count(gm, torch.ops.aten.cos) == attention_layers
    expected = logits(gm, batch)
    gm, info = run_pass("eliminate_common_subexpressions", gm)
    assert not info.skipped and info.num_matches > 0
    assert count(gm, torch.ops.aten.cos) == 1 and count(gm, torch.ops.aten.sin) == 1
    # the source ops themselves are never merged, even where two read the same inputs
    assert count(gm, torch.ops.trtllm_flash.attention) == attention_layers
    torch.testing.assert_close(logits(gm, batch), expected, rtol=0, atol=0)
    gm, again = run_pass("eliminate_common_subexpressions", gm)
    assert again.skipped


def test_cse_keeps_random_and_uninitialised_tensors_apart():
    class TwoDraws(torch.nn.Module):
        def forward(self, x):
            return torch.rand_like(x) + torch.rand_like(x), torch.empty_like(x).fill_(1) + torch.empty_like(x).fill_(2)

    gm = torch.export.export(TwoDraws(), (torch.zeros(3),)).module()
    gm, info = run_pass("eliminate_common_subexpressions", gm)
    assert info.skipped
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert sum("rand" in t for t in targets) == 2 and sum("empty" in t for t in targets) == 2


def test_fuse_causal_convs_gives_each_deltanet_layer_one_conv(model, gm, batch):
    deltanet = list(model.config.layer_types).count("deltanet")
    mamba = sum(t in ("m", "m2") for t in model.config.layer_types)
    gm, _ = run_pass("fuse_gemms", gm)
    expected = logits(gm, batch)
    gm, info = run_pass("fuse_causal_convs", gm)
    assert info.num_matches == deltanet
    convs = find_op_nodes(gm, torch.ops.trtllm_flash.causal_conv1d)
    assert len(convs) == mamba + deltanet
    hidden = model.config.hidden_size
    merged = [c for c in convs if c.args[1].meta["val"].shape[0] == 3 * hidden]
    assert len(merged) == deltanet
    # one conv state of 3 * hidden channels per DeltaNet layer once the cache is inserted
    specs = get_descriptor("trtllm_flash_causal_conv").cache_specs(merged[0])
    assert specs["conv_state"].shape == (3 * hidden, 3)
    assert not [name for name, _ in gm.named_parameters() if "q_conv1d" in name]
    # a depthwise conv treats each channel alone: concatenating them changes no arithmetic
    torch.testing.assert_close(logits(gm, batch), expected, rtol=0, atol=0)


def test_fuse_causal_convs_needs_the_projections_fused_first(gm):
    code = gm.code
    gm, info = run_pass("fuse_causal_convs", gm)
    assert info.skipped and gm.code == code


def test_fuse_causal_convs_leaves_convs_with_different_activations(gm, batch):
    gm, _ = run_pass("fuse_gemms", gm)
    convs = [c for c in find_op_nodes(gm, torch.ops.trtllm_flash.causal_conv1d) if c.args[0].target is operator.getitem]
    by_split = {}
    for conv in convs:
        by_split.setdefault(conv.args[0].args[0], []).append(conv)
    deltanet_groups = [group for group in by_split.values() if len(group) == 3]
    layer_convs = deltanet_groups[0]
    # the middle conv (k) gets another activation: q and v are no longer adjacent, so nothing merges there
    layer_convs[1].args = (*layer_convs[1].args[:3], "none")
    gm.recompile()
    expected = logits(gm, batch)
    gm, info = run_pass("fuse_causal_convs", gm)
    assert info.num_matches == len(deltanet_groups) - 1
    torch.testing.assert_close(logits(gm, batch), expected, rtol=0, atol=0)


def test_use_gemv_linear_routes_every_projection_and_the_lm_head(gm, batch):
    linears = count(gm, torch.ops.aten.linear)
    expected = logits(gm, batch)
    gm, info = run_pass("use_gemv_linear", gm)
    assert info.num_matches == linears and count(gm, torch.ops.aten.linear) == 0
    assert count(gm, torch.ops.trtllm_flash.linear) == linears
    # on the CPU the op is F.linear itself
    torch.testing.assert_close(logits(gm, batch), expected, rtol=0, atol=0)
