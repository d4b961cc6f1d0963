"""Exporting the tiny preset: exact source-op node counts, dynamic batch / sequence, eager model untouched."""
import pytest
import torch

from trtllm_flash.export import export_model  # noqa: E402
from trtllm_flash.loading import load_model  # noqa: E402
from trtllm_flash.transforms.graph_utils import find_op_nodes  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()


@pytest.fixture(scope="module")
def gm(model):
    return export_model(model)


def test_one_source_node_per_mixer_op(model, gm):
    types = list(model.config.layer_types)
    attention, mamba, deltanet = types.count("a"), sum(t in ("m", "m2") for t in types), types.count("deltanet")
    assert attention and mamba and deltanet, f"the tiny preset should have every mixer, has {types}"
    ops = torch.ops.trtllm_flash
    counts = {op: len(find_op_nodes(gm, getattr(ops, op))) for op in ("attention", "ssm", "causal_conv1d", "delta_rule", "l2norm", "rms_norm_gated")}
    assert counts == {
        "attention": attention,
        "ssm": mamba,
        "causal_conv1d": mamba + 3 * deltanet,
        "delta_rule": deltanet,
        "l2norm": 2 * deltanet,
        "rms_norm_gated": mamba,
    }


@torch.no_grad()
@pytest.mark.parametrize("batch,seq", [(1, 1), (3, 5)])
def test_the_graph_matches_the_eager_model_at_other_shapes(model, gm, batch, seq):
    ids = torch.randint(3, 500, (batch, seq), generator=torch.Generator().manual_seed(seq))
    pos = torch.arange(seq).expand(batch, seq)
    torch.testing.assert_close(gm(input_ids=ids, position_ids=pos), model(ids, pos), rtol=1e-5, atol=1e-5)
    assert all("forward" not in vars(m) for m in model.modules())
