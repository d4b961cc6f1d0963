"""examples/auto_deploy/nemotron_flash_trtllm_flash.yaml names only registered factories, transforms and
backends, and every key new to AutoDeploy's default.yaml carries a stage (upstream's _clean_config reads it)."""
from __future__ import annotations

from pathlib import Path

import yaml

YAML = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "nemotron_flash_trtllm_flash.yaml"


def test_example_yaml_selects_registered_names(autodeploy):
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry
    from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
    from tensorrt_llm._torch.auto_deploy.transform.interface import TransformRegistry
    from tensorrt_llm._torch.auto_deploy.transform.upstream_transforms import UPSTREAM_TRANSFORMS

    config = yaml.safe_load(YAML.read_text())
    assert ModelFactoryRegistry.has(config["model_factory"]) and config["model_factory"] == autodeploy.registration.model_factory
    for key, values in config["transforms"].items():
        assert TransformRegistry.has(key), key
        if key not in UPSTREAM_TRANSFORMS:
            assert "stage" in values, f"{key} is new to default.yaml and needs a stage"
            TransformRegistry.get_config_class(key)(**values)
        if "backend" in values:
            assert AttentionRegistry.has(values["backend"]) and values["backend"] in autodeploy.registration.attention_backends
