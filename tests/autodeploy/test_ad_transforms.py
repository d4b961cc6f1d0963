"""Our passes run inside AutoDeploy's transform machinery (stand-in BaseTransform / TransformConfig)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Tuple

import pytest
import torch
import torch.nn as nn
from torch.fx import GraphModule

from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformConfig, TransformInfo


class _ScaleConfig(TransformConfig):
    factor: float = 2.0


class _ScaleOutput(BaseTransform):
    """Tiny local pass: multiplies the graph output by ``factor`` and records what it was given."""

    config_class = _ScaleConfig
    seen: dict = {}

    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        _ScaleOutput.seen = {"stage": self.config.stage.value, "page_size": ctx.page_size, "max_batch_size": ctx.max_batch_size}
        output = next(n for n in gm.graph.nodes if n.op == "output")
        with gm.graph.inserting_before(output):
            scaled = gm.graph.call_function(torch.ops.aten.mul.Tensor, (output.args[0], self.config.factor))
        output.args = (scaled,)
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=1)


def _cm():
    info = SimpleNamespace(max_batch_size=5, max_seq_len=64, tokens_per_block=16, page_size=16, device=torch.device("cpu"))
    return SimpleNamespace(info=info)


def _optimize(gm, config, cm=None):
    """Run ``config`` ({key: {...}}) through the generation's InferenceOptimizer, as upstream does;
    returns the graph and the info each transform stored in its meta."""
    from tensorrt_llm._torch.auto_deploy.transform.optimizer import InferenceOptimizer

    gm = InferenceOptimizer(None, config)(cm or _cm(), gm)
    return gm, gm.meta["_autodeploy"]["transform_history"]


def test_wrapped_pass_gets_its_config_and_context(autodeploy):
    from tensorrt_llm._torch.auto_deploy.transform.interface import Stages, TransformRegistry
    from tensorrt_llm._torch.auto_deploy.transform.interface import TransformConfig as ADConfig

    from trtllm_flash.autodeploy.generations import mapping_module
    from trtllm_flash.autodeploy.transforms import make_autodeploy_transform

    wrapped = make_autodeploy_transform("scale_output", _ScaleOutput, mapping_module(autodeploy.registration.generation))
    config_class = wrapped.get_config_class()
    assert issubclass(config_class, ADConfig) and config_class.model_fields["factor"].default == 2.0
    TransformRegistry.register("test_scale_output")(wrapped)
    gm = torch.fx.symbolic_trace(nn.Identity())
    gm, history = _optimize(gm, {"test_scale_output": {"stage": "post_load_fusion", "factor": 3.0}})
    info = history["test_scale_output"]
    assert (info.skipped, info.num_matches) == (False, 1)
    assert _ScaleOutput.seen == {"stage": Stages.POST_LOAD_FUSION.value, "page_size": 16, "max_batch_size": 5}
    torch.testing.assert_close(gm(torch.ones(2)), torch.full((2,), 3.0))


def test_registered_keys_cover_our_registry_minus_autodeploy_own(autodeploy):
    from tensorrt_llm._torch.auto_deploy.transform.interface import TransformRegistry

    from trtllm_flash.autodeploy.transforms import NOT_WRAPPED, autodeploy_key
    from trtllm_flash.transforms import all_transforms

    expected = {autodeploy_key(n) for n in all_transforms() if n not in NOT_WRAPPED}
    assert set(autodeploy.registration.transforms) == expected
    assert all(TransformRegistry.get(k).our_pass is all_transforms()[k[len("trtllm_flash_"):]] for k in expected)


def test_wrapped_fuse_mamba_a_log_rewrites_like_ours(autodeploy):
    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.A_log = nn.Parameter(torch.tensor([0.1, -0.3]))

        def forward(self, x):
            return x * -torch.exp(self.A_log.float())

    x = torch.randn(3, 2)
    gm = torch.export.export(Mixer(), (x,)).module()
    expected = gm(x)
    gm, history = _optimize(gm, {"trtllm_flash_fuse_mamba_a_log": {"stage": "post_load_fusion"}})
    assert (history["trtllm_flash_fuse_mamba_a_log"].skipped, history["trtllm_flash_fuse_mamba_a_log"].num_matches) == (False, 1)
    assert not any(n.target == torch.ops.aten.exp.default for n in gm.graph.nodes)
    torch.testing.assert_close(gm(x), expected)


def test_unregistered_transform_key_fails_when_the_optimizer_is_built(autodeploy):
    import pytest

    with pytest.raises(KeyError):
        _optimize(torch.fx.symbolic_trace(nn.Identity()), {"trtllm_flash_no_such_pass": {"stage": "post_load_fusion"}})


def _tiny_autodeploy_graph():
    """Our AutoDeploy model class on the tiny preset, exported the way AutoDeploy's export_to_gm does
    (keyword inputs), as a plain GraphModule whose inputs are its placeholders; plus the reference logits."""
    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel
    from trtllm_flash.config import NemotronFlashConfig

    config = NemotronFlashConfig.from_preset("tiny")
    torch.manual_seed(0)
    model = NemotronFlashAutoDeployModel._from_config(config).eval()
    ids = torch.randint(0, config.vocab_size, (1, 6))
    pos = torch.arange(6)[None]
    with torch.no_grad():
        (expected,) = model(input_ids=ids, position_ids=pos)
    exported = torch.export.export(model, (), {"input_ids": ids, "position_ids": pos}, strict=False).module()
    gm = GraphModule(exported, exported.graph)
    gm.graph._codegen = torch.fx.graph.CodeGen()
    gm.recompile()
    return gm, ids, pos, expected


@pytest.mark.parametrize("order", [("gather_logits_before_lm_head", "trtllm_flash_fold_logit_row_norm"), ("trtllm_flash_fold_logit_row_norm", "gather_logits_before_lm_head")])
def test_fold_logit_row_norm_with_upstreams_gather_before_the_head_in_both_orders(autodeploy, order):
    from ad_harness import generation, make_sequence_info

    gm, ids, pos, expected = _tiny_autodeploy_graph()
    info = make_sequence_info(autodeploy, max_seq_len=16, max_batch_size=2, page_size=4, num_blocks=8)
    cm = SimpleNamespace(info=info)
    gm, history = _optimize(gm, {key: {"stage": "post_load_fusion"} for key in order}, cm)
    assert [history[k].num_matches for k in order] == [1, 1]
    norms = [n for n in gm.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.linalg_vector_norm.default]
    assert not norms, "the lm_head row norm must be folded into a constant"
    gather_ops = (torch.ops.auto_deploy.gather_logits_before_lm_head.default, torch.ops.auto_deploy.gather_tokens.default)
    gather = next(n for n in gm.graph.nodes if n.target in gather_ops)
    # upstream gathers the output's producer when it is not a linear: here the division by the row norm
    assert gather.args[0].target == torch.ops.aten.div.Tensor and next(iter(gather.users)).op == "output"
    if generation(autodeploy) == "batch_info":  # gathers the last prompt token unless told otherwise
        info.nest_sequences(ids[0].tolist(), cu_seqlen=[0, 6], input_pos=0)
        wanted, inputs = [5], [info.get_arg("token_gather_indices"), info.get_arg("batch_info_host")]
    else:
        info.nest_sequences([ids[0].tolist()], input_pos=0, logits_gather_indices=[5, 2], logits_gather_info=[2, 1])
        wanted, inputs = [5, 2], [info._get_arg("logits_gather_indices"), info._get_arg("logits_gather_info_host")]
    with torch.no_grad():
        (logits,) = gm(ids, pos, *inputs)
    torch.testing.assert_close(logits[0], expected[0, wanted], atol=1e-5, rtol=1e-5)
