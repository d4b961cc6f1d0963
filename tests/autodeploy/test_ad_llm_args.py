"""The example YAML passes AutoDeploy's ``LlmArgs`` validation (stand-in of each generation: unknown keys
refused, ``model_factory`` registered, transforms merged over the defaults, shortcuts synced) and the
transforms it yields build the generation's InferenceOptimizer (every key registered and staged)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

YAML = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "nemotron_flash_trtllm_flash.yaml"


def _config():
    return yaml.safe_load(YAML.read_text())


def test_example_yaml_validates_and_builds_the_optimizer(autodeploy):
    from tensorrt_llm._torch.auto_deploy.llm_args import LlmArgs
    from tensorrt_llm._torch.auto_deploy.transform.optimizer import InferenceOptimizer

    args = LlmArgs(model="nvidia/Nemotron-Flash-3B-Instruct", **_config())
    assert args.model_factory == autodeploy.registration.model_factory
    backends = {k: v["backend"] for k, v in args.transforms.items() if k.startswith("insert_cached_")}
    assert len(backends) == 4 and set(backends.values()) <= set(autodeploy.registration.attention_backends)
    assert args.attn_backend == "trtllm_flash_attention"  # synced from the transform, not the default
    assert args.transforms["compile_model"]["backend"] == "torch-cudagraph"
    optimizer = InferenceOptimizer(None, args.transforms)
    order = list(optimizer.config)
    assert order.index("insert_cached_delta_rule") < order.index("initialize_cache")
    assert all(k in order for k in autodeploy.registration.transforms if k in args.transforms)


def test_yaml_mistakes_are_refused(autodeploy):
    from tensorrt_llm._torch.auto_deploy.llm_args import LlmArgs

    with pytest.raises(ValidationError, match="does not exist in the model factory registry"):
        LlmArgs(model="m", **{**_config(), "model_factory": "NoSuchFactory"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        LlmArgs(model="m", **{**_config(), "trtllm_flash_option": 1})
    explicit = LlmArgs(model="m", **{**_config(), "attn_backend": "flashinfer"})
    assert explicit.transforms["insert_cached_attention"]["backend"] == "flashinfer"  # an explicit shortcut wins
