"""fuse_delta_rule_prologue: on the tiny preset every DeltaNet layer's ``l2norm(q), l2norm(k)`` and
``sigmoid(b)`` move into its ``delta_rule`` (output bit-identical on the CPU, where both sides run the same
torch code), the default pipeline carries the options through cache insertion, and shapes that must not
(fully) match leave what they must."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

import trtllm_flash.ops  # noqa: F401  (registers the ops)
from trtllm_flash.build import build_model
from trtllm_flash.export import export_model
from trtllm_flash.loading import load_model
from trtllm_flash.transforms import BuildContext
from trtllm_flash.transforms.graph_utils import find_op_nodes, is_op
from trtllm_flash.transforms.registry import get_transform, make_config

L2NORM, SIGMOID = torch.ops.trtllm_flash.l2norm, torch.ops.aten.sigmoid.default
RULES = (torch.ops.trtllm_flash.delta_rule, torch.ops.trtllm_flash.cached_delta_rule)


def run_pass(gm):
    name = "fuse_delta_rule_prologue"
    return get_transform(name)(make_config(name, {"stage": "post_load_fusion"})).apply(gm, BuildContext())


def prologue_feeding_a_delta_rule(gm):
    """l2norm / sigmoid nodes read by a (cached) delta rule."""
    return [n for n in gm.graph.nodes if is_op(n, [L2NORM, SIGMOID]) and any(is_op(u, RULES) for u in n.users)]


@torch.no_grad()
def test_tiny_preset_every_deltanet_layer_takes_its_prologue_in():
    model = load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()
    deltanet = list(model.config.layer_types).count("deltanet")
    gm = export_model(model)
    assert deltanet > 0 and len(prologue_feeding_a_delta_rule(gm)) == 3 * deltanet
    ids = torch.randint(3, 500, (2, 6), generator=torch.Generator().manual_seed(0))
    inputs = dict(input_ids=ids, position_ids=torch.arange(6).expand(2, 6))
    expected = gm(**inputs)

    gm, info = run_pass(gm)

    assert not info.skipped and info.num_matches == deltanet
    assert prologue_feeding_a_delta_rule(gm) == [] and len(find_op_nodes(gm, L2NORM)) == 0
    rules = find_op_nodes(gm, torch.ops.trtllm_flash.delta_rule)
    assert len(rules) == deltanet and all(rule.args[5:] == (1e-6, True) for rule in rules)
    torch.testing.assert_close(gm(**inputs), expected, atol=0, rtol=0)
    assert run_pass(gm)[1].skipped  # nothing left to fuse


def test_default_pipeline_carries_the_options_into_the_cached_op():
    args = dict(model="tiny", dtype="float32", device="cpu", max_batch_size=4, max_seq_len=256, page_size=16)
    args.update(seed=0, compile_backend="torch-simple", cuda_graph_batch_sizes=[1], transforms={})
    gm = build_model(SimpleNamespace(**args), progress=None).graph_module
    cached = find_op_nodes(gm, torch.ops.trtllm_flash.cached_delta_rule)
    assert cached and prologue_feeding_a_delta_rule(gm) == []
    head_dim_scale = cached[0].args[-3]
    assert all(node.args[-3:] == (head_dim_scale, 1e-6, True) for node in cached)


class Prologue(nn.Module):
    """``delta_rule(l2norm(q, eps_q), l2norm(k, eps_k), v, sigmoid(b))``, optionally with another user of the
    normalised q or of beta."""

    def __init__(self, eps_q=1e-6, eps_k=1e-6, q_used_again=False, beta_used_again=False):
        super().__init__()
        self.eps_q, self.eps_k, self.q_used_again, self.beta_used_again = eps_q, eps_k, q_used_again, beta_used_again

    def forward(self, q, k, v, b):
        q_n, k_n = torch.ops.trtllm_flash.l2norm(q, self.eps_q), torch.ops.trtllm_flash.l2norm(k, self.eps_k)
        beta = torch.sigmoid(b)
        o = torch.ops.trtllm_flash.delta_rule(q_n, k_n, v, beta, 0.3)
        if self.q_used_again:
            o = o + q_n[..., :1]
        if self.beta_used_again:
            o = o + beta[..., None]
        return o


@torch.no_grad()
@pytest.mark.parametrize(
    "module, options, left",
    [
        pytest.param(Prologue(), (1e-6, True), set(), id="all"),
        pytest.param(Prologue(beta_used_again=True), (1e-6, False), {SIGMOID}, id="beta-has-another-user"),
        pytest.param(Prologue(q_used_again=True), (None, True), {L2NORM.default}, id="q-has-another-user"),
        pytest.param(Prologue(eps_k=1e-5), (None, True), {L2NORM.default}, id="different-eps"),
        pytest.param(Prologue(q_used_again=True, beta_used_again=True), None, {L2NORM.default, SIGMOID}, id="none"),
    ],
)
def test_each_half_matches_alone(module, options, left):
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(1, 5, 2, *d, generator=g) for d in ((8,), (8,), (6,), ()))  # q, k, v, b
    gm = torch.export.export(module, inputs).module()
    expected = gm(*inputs)

    gm, info = run_pass(gm)

    (rule,) = find_op_nodes(gm, torch.ops.trtllm_flash.delta_rule)
    if options is None:
        assert info.skipped and info.note and len(rule.args) == 5
    else:
        assert info.num_matches == 1 and tuple(rule.args[5:]) == options
    assert {n.target for n in gm.graph.nodes if is_op(n, [L2NORM, SIGMOID])} == left
    torch.testing.assert_close(gm(*inputs), expected, atol=0, rtol=0)
