"""fuse_norm_linear on the exported tiny preset (every norm kind a projection reads: the first pre-norm,
residual add + pre-norm, DeltaNet's per-head output norm, Mamba2's gated norm) and on small modules for
the cases that must not match; the logits are bit-identical on the CPU, where the fused ops run the
unfused references."""
import operator

import torch
import torch.nn as nn

from trtllm_flash.export import export_model
from trtllm_flash.loading import load_model
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.graph_utils import find_op_nodes
from trtllm_flash.transforms.registry import get_transform

NORMS = (torch.ops.trtllm_flash.rms_norm, torch.ops.trtllm_flash.add_rms_norm, torch.ops.trtllm_flash.rms_norm_gated)
LINEARS = (torch.ops.aten.linear, torch.ops.trtllm_flash.linear)


def run_passes(gm, *names, **overrides):
    configs = merge_transforms(overrides)
    infos = {}
    for name in names:
        gm, infos[name] = get_transform(name)(configs[name]).apply(gm, BuildContext())
    return gm, infos


def count(gm, op):
    return len(find_op_nodes(gm, op))


def norms_feeding_a_linear(gm):
    """Projections whose input is a norm's output, directly or through getitem / reshape."""
    found = 0
    for node in gm.graph.nodes:
        source = node.args[0] if node.op == "call_function" and node.target in (torch.ops.aten.linear.default, torch.ops.trtllm_flash.linear.default) else None
        while source is not None and source.op == "call_function" and source.target in (operator.getitem, torch.ops.aten.reshape.default):
            source = source.args[0]
        found += source is not None and any(source.target == op.default for op in NORMS)
    return found


def tiny_logits(gm, batch):
    with torch.no_grad():
        return gm(input_ids=batch[0], position_ids=batch[1])


def test_tiny_preset_every_norm_before_a_projection_is_fused():
    model = load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()
    types = list(model.config.layer_types)
    gm, _ = run_passes(export_model(model), "fuse_gemms", "fuse_add_rms_norm", "use_gemv_linear")
    batch = (torch.randint(3, 500, (2, 6), generator=torch.Generator().manual_seed(0)), torch.arange(6).expand(2, 6))
    expected = tiny_logits(gm, batch)
    before = norms_feeding_a_linear(gm)
    residual_norms = count(gm, torch.ops.trtllm_flash.add_rms_norm)
    # the first pre-norm, one residual pre-norm per mixer / FFN after it, the final norm, DeltaNet's o_norm, Mamba2's gated norm
    assert residual_norms == 2 * len(types) - 1 and before == 1 + residual_norms + types.count("deltanet") + types.count("m2")

    gm, infos = run_passes(gm, "fuse_norm_linear")

    assert not infos["fuse_norm_linear"].skipped and infos["fuse_norm_linear"].num_matches == before
    assert norms_feeding_a_linear(gm) == 0
    assert count(gm, torch.ops.trtllm_flash.add_rms_norm_linear) == residual_norms
    assert count(gm, torch.ops.trtllm_flash.rms_norm_linear) == 1 + types.count("deltanet") + types.count("m2")
    assert count(gm, torch.ops.trtllm_flash.add_rms_norm) == 0 and count(gm, torch.ops.trtllm_flash.rms_norm_gated) == 0
    # attention's q/k norms feed RoPE, not a projection: still there
    assert count(gm, torch.ops.trtllm_flash.rms_norm) == 2 * types.count("a")
    groups = sorted({n.args[4] for n in find_op_nodes(gm, torch.ops.trtllm_flash.rms_norm_linear)})
    assert groups == sorted({model.config.hidden_size, model.config.head_dim, model.config.mamba_d_inner})
    torch.testing.assert_close(tiny_logits(gm, batch), expected, rtol=0, atol=0)


def test_the_lm_head_behind_the_logit_gather_keeps_its_norm():
    model = load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()
    gm, infos = run_passes(export_model(model), "fuse_gemms", "fuse_add_rms_norm", "gather_logits_before_lm_head", "fuse_norm_linear",
                           gather_logits_before_lm_head={"enabled": True})
    assert not infos["fuse_norm_linear"].skipped
    assert count(gm, torch.ops.trtllm_flash.add_rms_norm) == 1  # the final norm, read through the gather


class TwoReaders(nn.Module):
    """A norm read by two projections, and a norm before a projection with a bias: neither may fuse."""

    def __init__(self):
        super().__init__()
        self.norm_weight = nn.Parameter(torch.ones(16))
        self.a, self.b = nn.Linear(16, 8, bias=False), nn.Linear(16, 8, bias=False)
        self.biased = nn.Linear(16, 8)

    def forward(self, x):
        normed = torch.ops.trtllm_flash.rms_norm(x, self.norm_weight, 1e-6)
        return self.a(normed) + self.b(normed) + self.biased(torch.ops.trtllm_flash.rms_norm(x, self.norm_weight, 1e-6))


def test_a_norm_with_other_readers_or_a_biased_projection_is_left_alone():
    gm = torch.export.export(TwoReaders(), (torch.randn(2, 3, 16),)).module()
    code = gm.code
    gm, infos = run_passes(gm, "fuse_norm_linear")
    assert infos["fuse_norm_linear"].skipped and gm.code == code
