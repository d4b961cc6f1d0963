"""Each post-load pass alone on the tiny delta-rule LM: the rewrite happened (node counts) and the output
is unchanged."""
import pytest
import torch

from trtllm_flash.export import export_model
from trtllm_flash.transforms import BuildContext, merge_transforms
from trtllm_flash.transforms.gather_logits_before_lm_head import GATHER_IDX
from trtllm_flash.transforms.graph_utils import find_op_nodes
from trtllm_flash.transforms.registry import get_transform

from tiny_models import VOCAB, tiny_delta_lm


def run_pass(name, gm, **overrides):
    config = merge_transforms({name: overrides})[name]
    return get_transform(name)(config).apply(gm, BuildContext())


@pytest.fixture(scope="module")
def model():
    return tiny_delta_lm()


@pytest.fixture
def gm(model):
    return export_model(model)


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    ids = torch.randint(0, VOCAB, (2, 7))
    return ids, torch.arange(7).expand(2, 7)


def count(gm, op):
    return len(find_op_nodes(gm, op))


@torch.no_grad()
def test_fuse_mamba_a_log_folds_exp_into_a_buffer(model, gm, batch):
    expected = model(*batch)
    gm, info = run_pass("fuse_mamba_a_log", gm)
    assert info.num_matches == 1
    assert count(gm, torch.ops.aten.exp) == 0 and count(gm, torch.ops.aten.neg) == 0
    assert "A_log" not in dict(gm.named_parameters()) and hasattr(gm, "A_fused")
    torch.testing.assert_close(gm(input_ids=batch[0], position_ids=batch[1]), expected, rtol=0, atol=0)


@torch.no_grad()
def test_fold_logit_row_norm_leaves_no_reduction_over_the_table(model, gm, batch):
    expected = model(*batch)
    gm, info = run_pass("fold_logit_row_norm", gm)
    assert info.num_matches == 1 and count(gm, torch.ops.aten.linalg_vector_norm) == 0
    assert gm.lm_head_row_norm.shape == (VOCAB,)
    torch.testing.assert_close(gm(input_ids=batch[0], position_ids=batch[1]), expected, rtol=0, atol=0)


@torch.no_grad()
def test_fuse_gemms_merges_projections_sharing_an_input(model, gm, batch):
    expected = model(*batch)
    before = count(gm, torch.ops.aten.linear)
    gm, info = run_pass("fuse_gemms", gm)
    # per block q/k/v/b -> 1 GEMM: 2 blocks x 3 fewer linears
    assert info.num_matches == 2 and count(gm, torch.ops.aten.linear) == before - 6
    fused = [name for name, _ in gm.named_buffers() if "fused_q_proj_k_proj_v_proj_b_proj" in name]
    assert len(fused) == 2 and not any("q_proj.weight" in n for n, _ in gm.named_parameters())
    torch.testing.assert_close(gm(input_ids=batch[0], position_ids=batch[1]), expected, rtol=1e-6, atol=1e-6)


@torch.no_grad()
def test_fuse_add_rms_norm_replaces_residual_add_then_norm(model, gm, batch):
    expected = model(*batch)
    norms = count(gm, torch.ops.trtllm_flash.rms_norm)
    gm, info = run_pass("fuse_add_rms_norm", gm)
    # the add after each of the 2 blocks feeds the next norm (block 1's norm, the final norm)
    assert info.num_matches == 2
    assert count(gm, torch.ops.trtllm_flash.add_rms_norm) == 2 and count(gm, torch.ops.trtllm_flash.rms_norm) == norms - 2
    torch.testing.assert_close(gm(input_ids=batch[0], position_ids=batch[1]), expected, rtol=0, atol=0)


@torch.no_grad()
def test_gather_logits_computes_only_the_requested_tokens(model, gm, batch):
    expected = model(*batch).reshape(-1, VOCAB)
    gm, info = run_pass("gather_logits_before_lm_head", gm, enabled=True)
    assert info.num_matches == 1 and GATHER_IDX in [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    gather_idx = torch.tensor([6, 13, 0])
    out = gm(input_ids=batch[0], position_ids=batch[1], gather_idx=gather_idx)
    assert out.shape == (3, VOCAB) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected[gather_idx], rtol=1e-6, atol=1e-6)
    lm_head = next(n for n in find_op_nodes(gm, torch.ops.aten.linear) if "lm_head" in str(n.args[1].target))
    assert lm_head.args[0].target == torch.ops.aten.index_select.default


def test_a_pass_that_cannot_match_skips_and_leaves_the_graph(gm):
    run_pass("fuse_mamba_a_log", gm)
    code = gm.code
    gm, info = run_pass("fuse_mamba_a_log", gm)
    assert info.skipped and gm.code == code
