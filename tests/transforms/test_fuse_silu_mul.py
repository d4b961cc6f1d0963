"""fuse_silu_mul after fuse_gemms: on the tiny preset every SwiGLU FFN's ``silu(gate) * up`` becomes one
``silu_mul`` node reading the fused gate/up GEMM output, with the graph's output unchanged (bit-exact on the
CPU, where the op is the reference); shapes that must not match (relu2 FFN, intermediates with other users,
other splits) leave the graph as it was."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import trtllm_flash.ops.silu_mul  # noqa: F401  (registers torch.ops.trtllm_flash.silu_mul)
import trtllm_flash.transforms  # noqa: F401  (registers the other passes)
import trtllm_flash.transforms.fuse_silu_mul  # noqa: F401  (registers fuse_silu_mul)
from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.export import export_model
from trtllm_flash.loading import random_model
from trtllm_flash.transforms import BuildContext
from trtllm_flash.transforms.graph_utils import find_op_nodes
from trtllm_flash.transforms.registry import get_transform, make_config


def run_pass(name, gm):
    # the stage is given here so the test does not depend on the pass being in DEFAULT_PIPELINE
    return get_transform(name)(make_config(name, {"stage": "post_load_fusion"})).apply(gm, BuildContext())


def count(gm, op):
    return len(find_op_nodes(gm, op))


def tiny_inputs(vocab, batch=2, seq=7):
    ids = torch.randint(3, vocab, (batch, seq), generator=torch.Generator().manual_seed(1))
    return dict(input_ids=ids, position_ids=torch.arange(seq).expand(batch, seq))


@torch.no_grad()
def test_tiny_preset_every_ffn_becomes_one_silu_mul():
    model = random_model(NemotronFlashConfig.from_preset("tiny"), dtype=torch.bfloat16, seed=0).eval()
    ffns = sum(layer.has_ffn for layer in model.model.layers)
    ffn_dim = model.config.ffn_dim
    assert ffns > 0 and model.config.mlp_hidden_act == "silu"
    gm, _ = run_pass("fuse_gemms", export_model(model))
    assert count(gm, torch.ops.aten.silu) == ffns
    inputs = tiny_inputs(model.config.vocab_size)
    expected = gm(**inputs)  # the unfused activation, after fuse_gemms

    gm, info = run_pass("fuse_silu_mul", gm)

    assert not info.skipped and info.num_matches == ffns
    assert count(gm, torch.ops.aten.silu) == 0
    nodes = find_op_nodes(gm, torch.ops.trtllm_flash.silu_mul)
    assert len(nodes) == ffns
    for node in nodes:
        (y,) = node.args
        # reads the fused gate/up GEMM output directly; no split left behind
        weight = str(y.args[1].target)
        assert y.target == torch.ops.aten.linear.default and "gate_proj" in weight and "up_proj" in weight
        assert list(y.users) == [node]
        val = node.meta["val"]
        assert val.shape[-1] == ffn_dim and val.dtype == torch.bfloat16
        assert [u.target for u in node.users] == [torch.ops.aten.linear.default]  # down_proj
        assert "down_proj" in str(next(iter(node.users)).args[1].target)
    out = gm(**inputs)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=0, rtol=0)


@torch.no_grad()
def test_relu2_ffn_is_skipped_and_the_graph_unchanged():
    model = random_model(NemotronFlashConfig.from_preset("tiny", mlp_hidden_act="relu2"), seed=0).eval()
    gm, _ = run_pass("fuse_gemms", export_model(model))
    code = gm.code
    gm, info = run_pass("fuse_silu_mul", gm)
    assert info.skipped and info.num_matches == 0
    assert gm.code == code and count(gm, torch.ops.trtllm_flash.silu_mul) == 0


VOCAB, HIDDEN, FFN = 37, 16, 24


class FusedSwiGLU(nn.Module):
    """embed -> one gate/up GEMM -> ``activation(gate_up)`` -> down: the graph fuse_gemms leaves, with variants."""

    def __init__(self, activation):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.gate_up = nn.Linear(HIDDEN, 2 * FFN, bias=False)
        self.down = nn.Linear(FFN, VOCAB, bias=False)
        self.activation = activation

    def forward(self, input_ids, position_ids):
        return self.down(self.activation(self.gate_up(self.embed(input_ids))))


def _swiglu(y):
    g, u = torch.split(y, [FFN, FFN], -1)
    return F.silu(g) * u


def _up_times_silu_positive_dim(y):
    g, u = torch.split(y, [FFN, FFN], 2)
    return u * F.silu(g)


def _silu_has_another_user(y):
    g, u = torch.split(y, [FFN, FFN], -1)
    s = F.silu(g)
    return s * u + s


def _up_has_another_user(y):
    g, u = torch.split(y, [FFN, FFN], -1)
    return F.silu(g) * u - u


def _silu_on_the_second_half(y):
    g, u = torch.split(y, [FFN, FFN], -1)
    return F.silu(u) * g


def _three_way_split(y):
    a, b, c = torch.split(y, [FFN // 2, FFN // 2, FFN], -1)
    return torch.cat([F.silu(a) * b, c[..., FFN // 2 :]], -1)


def _split_along_another_dim(y):
    # [b, s, 2, FFN] split along dim 2 (not the last) into halves of the same shape
    g, u = torch.split(y.unflatten(-1, (2, FFN)), [1, 1], 2)
    return (F.silu(g) * u).squeeze(2)


@torch.no_grad()
@pytest.mark.parametrize(
    "activation, matches",
    [
        pytest.param(_swiglu, 1, id="silu-times-up"),
        pytest.param(_up_times_silu_positive_dim, 1, id="up-times-silu-dim-2"),
        pytest.param(_silu_has_another_user, 0, id="silu-has-another-user"),
        pytest.param(_up_has_another_user, 0, id="up-has-another-user"),
        pytest.param(_silu_on_the_second_half, 0, id="silu-on-second-half"),
        pytest.param(_three_way_split, 0, id="three-way-split"),
        pytest.param(_split_along_another_dim, 0, id="split-along-another-dim"),
    ],
)
def test_what_matches(activation, matches):
    torch.manual_seed(0)
    model = FusedSwiGLU(activation).eval()
    gm = export_model(model)
    assert count(gm, torch.ops.aten.silu) >= 1
    inputs = tiny_inputs(VOCAB)
    expected = model(**inputs)
    code = gm.code
    gm, info = run_pass("fuse_silu_mul", gm)
    assert info.num_matches == matches and info.skipped == (matches == 0)
    assert count(gm, torch.ops.trtllm_flash.silu_mul) == matches
    if matches:
        assert count(gm, torch.ops.aten.silu) == 0 and count(gm, torch.ops.aten.split_with_sizes) == 0
    else:
        assert gm.code == code
    torch.testing.assert_close(gm(**inputs), expected, atol=0, rtol=0)
