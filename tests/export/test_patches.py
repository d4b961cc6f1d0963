"""Export patches on modules laid out like the published remote code (class names from MODEL.md)."""
import torch
import torch.nn as nn

from trtllm_flash.export import clean_exported_graph
from trtllm_flash.patches import apply_export_patches, patch_for
from trtllm_flash.transforms.graph_utils import find_op_nodes

HIDDEN, HEADS = 16, 2


class NemotronFlashRMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x):
        raise AssertionError("the export patch must replace this forward")


class DeltaNet(nn.Module):
    """fla's DeltaNet layout with the remote code's defaults (no gate, short convs without bias)."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(HIDDEN, HIDDEN, bias=False) for _ in range(4))
        self.b_proj = nn.Linear(HIDDEN, HEADS, bias=False)
        self.q_conv1d, self.k_conv1d, self.v_conv1d = (nn.Conv1d(HIDDEN, HIDDEN, 4, groups=HIDDEN, bias=False) for _ in range(3))
        self.o_norm = NemotronFlashRMSNorm(HIDDEN // HEADS, eps=1e-5)

    def forward(self, x):
        raise AssertionError("the export patch must replace this forward")


class NemotronFlashMamba2(nn.Module):
    def __init__(self, d_inner=32, d_state=4, head_dim=8, d_conv=4):
        super().__init__()
        heads, conv_dim = d_inner // head_dim, d_inner + 2 * d_state
        self.in_proj = nn.Linear(HIDDEN, 2 * d_inner + 2 * d_state + heads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1)
        self.A_log, self.D, self.dt_bias = (nn.Parameter(torch.rand(heads)) for _ in range(3))
        self.norm = NemotronFlashRMSNorm(d_inner, eps=1e-5)
        self.out_proj = nn.Linear(d_inner, HIDDEN, bias=False)

    def forward(self, x):
        raise AssertionError("the export patch must replace this forward")


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layernorm = NemotronFlashRMSNorm(HIDDEN)
        self.gla = DeltaNet()
        self.mamba = NemotronFlashMamba2()

    def forward(self, x):
        return self.mamba(self.gla(self.input_layernorm(x)))


def export_block(block):
    x = torch.randn(2, 6, HIDDEN)
    dims = {"x": {0: torch.export.Dim("b"), 1: torch.export.Dim("s")}}
    with apply_export_patches(block) as counts:
        gm = torch.export.export(block, (x,), dynamic_shapes=dims, strict=False).module()
    return clean_exported_graph(gm), counts


def test_remote_code_class_names_are_patched_with_one_node_per_op():
    block = Block()
    gm, counts = export_block(block)
    assert counts == {"rms_norm": 3, "deltanet": 1, "mamba2": 1}
    ops = torch.ops.trtllm_flash
    assert len(find_op_nodes(gm, ops.causal_conv1d)) == 3 + 1
    assert len(find_op_nodes(gm, ops.delta_rule)) == 1 and len(find_op_nodes(gm, ops.l2norm)) == 2
    assert len(find_op_nodes(gm, ops.ssm)) == 1 and len(find_op_nodes(gm, ops.rms_norm_gated)) == 1
    # the block's input_layernorm and DeltaNet's o_norm (Mamba's gated norm is its own op)
    assert len(find_op_nodes(gm, ops.rms_norm)) == 2
    ssm = find_op_nodes(gm, ops.ssm)[0]
    assert ssm.args[9] == 128 and ssm.args[8] == float("inf")


def test_the_eager_model_is_untouched_outside_the_block():
    block = Block()
    try:
        with apply_export_patches(block):
            assert "forward" in vars(block.gla)
            raise RuntimeError("export failed")
    except RuntimeError:
        pass
    assert all("forward" not in vars(m) for m in block.modules())


def test_modules_without_the_expected_layout_are_left_alone():
    class DeltaNet(nn.Module):  # same name, different layout (a gated variant with g_proj)
        def __init__(self):
            super().__init__()
            self.g_proj = nn.Linear(2, 2)

    assert patch_for(DeltaNet()) is None
    assert patch_for(nn.Linear(2, 2)) is None


@torch.no_grad()
def test_cached_hybrid_block_matches_the_source_graph_over_prefill_and_decode():
    """insert_cached_{causal_conv,ssm_attention,delta_rule} on the patched block: packed prefill of two
    sequences, then one decode each, equals the uncached graph on the whole sequences."""
    from trtllm_flash.ops.metadata import build_metadata
    from trtllm_flash.transforms import BuildContext, merge_transforms
    from trtllm_flash.transforms.registry import get_transform

    torch.manual_seed(0)
    block = Block()
    source, _ = export_block(block)
    cached, _ = export_block(block)
    ctx = BuildContext()
    configs = merge_transforms()
    for key in ("insert_cached_causal_conv", "insert_cached_ssm_attention", "insert_cached_delta_rule"):
        cached, info = get_transform(key)(configs[key]).apply(cached, ctx)
        assert info.num_matches == {"insert_cached_causal_conv": 4}.get(key, 1)
    assert sorted(ctx.cache_specs) == ["conv_state_0", "conv_state_1", "conv_state_2", "conv_state_3", "delta_state_0", "ssm_state_0"]
    caches = {n: torch.zeros(4, *s.shape, dtype=s.dtype) for n, s in ctx.cache_specs.items()}
    seqs = [torch.randn(7, HIDDEN), torch.randn(4, HIDDEN)]
    slots = [2, 0]

    def run(chunks, starts):
        meta = build_metadata([len(c) for c in chunks], starts, slots).as_dict()
        names = {n.target for n in cached.graph.nodes if n.op == "placeholder"}
        return cached(x=torch.cat(chunks)[None], **{k: v for k, v in meta.items() if k in names}, **caches)[0]

    out = run([s[:-1] for s in seqs], [0, 0])
    expected = torch.cat([source(x=s[None, :-1])[0] for s in seqs])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)  # measured 5.4e-7; was 1e-4
    out = run([s[-1:] for s in seqs], [len(s) - 1 for s in seqs])
    expected = torch.stack([source(x=s[None])[0, -1] for s in seqs])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_a_norm_without_a_valid_epsilon_is_refused_by_name_not_given_a_default():
    import pytest

    from trtllm_flash.patches.common import module_eps

    assert module_eps(NemotronFlashRMSNorm(4, eps=1e-5)) == 1e-5
    norm = NemotronFlashRMSNorm(4)
    del norm.variance_epsilon
    with pytest.raises(ValueError, match="NemotronFlashRMSNorm has no epsilon attribute"):
        module_eps(norm)
    for bad in ("tiny", 0.0, float("nan"), None):
        with pytest.raises(ValueError, match=f"NemotronFlashRMSNorm.variance_epsilon must be a positive number, got {bad!r}"):
            module_eps(NemotronFlashRMSNorm(4, eps=bad))
