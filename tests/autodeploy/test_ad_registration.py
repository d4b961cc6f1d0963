"""register() puts our descriptors, transforms and factory into AutoDeploy's registries (stand-in),
under our own names, without touching upstream's, and is idempotent."""
from __future__ import annotations

import pytest
import torch

from trtllm_flash.ops.interface import all_descriptors


def test_every_descriptor_is_an_attention_backend(autodeploy):
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionDescriptor, AttentionRegistry

    from trtllm_flash.autodeploy import register

    backends = register().attention_backends
    assert set(backends) == set(all_descriptors()) and backends
    for name, ours in all_descriptors().items():
        ad = AttentionRegistry.get(name)
        assert issubclass(ad, AttentionDescriptor) and ad.op_descriptor is ours
        assert ad.get_attention_layout() == "bsnd"
        assert ad.get_num_qkv_args() == ours.num_inputs()
        assert ad.get_source_attention_op() is ours.source_op()
        from ad_harness import passes_custom_mask

        if passes_custom_mask():  # wrapped to drop the mask argument the CacheConfig generation passes
            assert ad.get_cached_attention_op().__name__.endswith("_without_mask")
        else:
            assert ad.get_cached_attention_op() is ours.cached_op()
        if autodeploy.registration.generation == "batch_info":  # every name from one prepare op
            extra = list(ours.standard_metadata())
        else:
            extra = ["page_table"] if "page_table" in ours.standard_metadata() else []
        assert ad.get_standard_metadata_args() + extra == list(ours.standard_metadata())
        prepare, num_out, _ = ad.get_prepare_extra_metadata_info(None)
        assert (prepare is not None, num_out) == (bool(extra), len(extra))


def test_names_never_shadow_upstream(autodeploy):
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry
    from tensorrt_llm._torch.auto_deploy.custom_ops.upstream_backends import UPSTREAM_BACKENDS
    from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
    from tensorrt_llm._torch.auto_deploy.models.nemotron_flash import NemotronFlashForCausalLMFactory
    from tensorrt_llm._torch.auto_deploy.transform.interface import TransformRegistry
    from tensorrt_llm._torch.auto_deploy.transform.upstream_transforms import UPSTREAM_TRANSFORMS

    reg = autodeploy.registration
    assert not set(reg.attention_backends) & set(UPSTREAM_BACKENDS)
    assert all(AttentionRegistry.get(n).__name__ == f"Upstream_{n}" for n in UPSTREAM_BACKENDS)
    assert reg.transforms and all(k.startswith("trtllm_flash_") for k in reg.transforms)
    assert not any(TransformRegistry.get(k).__module__.startswith("trtllm_flash") for k in UPSTREAM_TRANSFORMS)
    assert reg.model_factory == "TrtllmFlashNemotronFlashForCausalLM"
    assert ModelFactoryRegistry.get("NemotronFlashForCausalLM") is NemotronFlashForCausalLMFactory
    assert "NemotronFlashConfig" not in NemotronFlashForCausalLMFactory._custom_model_mapping


def test_register_is_idempotent(autodeploy):
    from trtllm_flash.autodeploy import register

    first, second = register(), register()
    assert first == second and first.attention_backends


def test_a_foreign_class_under_our_name_is_refused(autodeploy, monkeypatch):
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry
    from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry

    from trtllm_flash.autodeploy.descriptors import register_attention_descriptors
    from trtllm_flash.autodeploy.factory import FACTORY_NAME, register_model_factory
    from trtllm_flash.autodeploy.generations import mapping_module

    name = sorted(all_descriptors())[0]
    monkeypatch.setitem(AttentionRegistry._attention_registry, name, type("Foreign", (), {}))
    with pytest.raises(RuntimeError, match="already registered by Foreign"):
        register_attention_descriptors(mapping_module(autodeploy.registration.generation))
    monkeypatch.setitem(ModelFactoryRegistry._registry, FACTORY_NAME, type("ForeignFactory", (), {}))
    with pytest.raises(RuntimeError, match="already registered by ForeignFactory"):
        register_model_factory()


def test_stand_in_attention_registry_asserts_on_duplicates(autodeploy):
    """The upstream behaviour our idempotence guard exists for."""
    from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry

    with pytest.raises(AssertionError, match="already registered"):
        AttentionRegistry.register("fla_delta")(object)


def test_oldest_generation_is_refused_naming_version_features_and_support(autodeploy, monkeypatch):
    from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface

    from trtllm_flash.autodeploy import register
    from trtllm_flash.autodeploy.generations import SUPPORTED, UnsupportedAutoDeployVersion

    # the oldest generation's hook (before get_standard_metadata_args / get_prepare_extra_metadata_info)
    monkeypatch.setattr(attention_interface.AttentionDescriptor, "get_prepare_metadata_op", classmethod(lambda cls: None), raising=False)
    with pytest.raises(UnsupportedAutoDeployVersion) as err:
        register()
    message = str(err.value)
    import tensorrt_llm

    assert f"TensorRT-LLM {tensorrt_llm.__version__}" in message and "get_prepare_metadata_op=yes" in message
    assert all(name in message for name in SUPPORTED)


def test_custom_model_class_is_mapped_on_our_factory_only(autodeploy):
    from tensorrt_llm._torch.auto_deploy.models.hf import AutoModelForCausalLMFactory

    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel, TrtllmFlashNemotronFlashFactory

    assert TrtllmFlashNemotronFlashFactory._custom_model_mapping == {"NemotronFlashConfig": NemotronFlashAutoDeployModel}
    assert "NemotronFlashConfig" not in AutoModelForCausalLMFactory._custom_model_mapping
    assert hasattr(NemotronFlashAutoDeployModel, "_from_config")


def test_model_class_returns_logits_tuple_with_source_ops(autodeploy):
    from trtllm_flash.config import NemotronFlashConfig

    from trtllm_flash import modeling
    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel

    config = NemotronFlashConfig.from_preset("tiny")
    torch.manual_seed(0)
    model = NemotronFlashAutoDeployModel._from_config(config).eval()
    reference = modeling.NemotronFlashForCausalLM(config).eval()
    reference.load_state_dict(model.state_dict())
    ids = torch.randint(0, config.vocab_size, (2, 5))
    pos = torch.arange(5).expand(2, 5)
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=pos)
        expected = reference(ids, pos)
    assert isinstance(out, tuple) and len(out) == 1
    torch.testing.assert_close(out[0], expected, atol=1e-4, rtol=1e-4)
    assert not any("forward" in vars(m) for m in model.modules())  # the export patches were reverted
    exported = torch.export.export(model, (), {"input_ids": ids, "position_ids": pos}, strict=False)
    targets = {n.target for n in exported.graph.nodes if n.op == "call_function"}
    sources = {d.source_op().default for d in all_descriptors().values()}
    assert targets & sources, "AutoDeploy's export must see our source ops"


def test_model_class_loads_the_published_checkpoint_layout(autodeploy):
    from trtllm_flash import modeling
    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel
    from trtllm_flash.config import NemotronFlashConfig
    from trtllm_flash.loading import MEMORY_KEY, checkpoint_state_dict

    config = NemotronFlashConfig.from_preset("tiny")
    torch.manual_seed(1)
    source = modeling.NemotronFlashForCausalLM(config)
    published = checkpoint_state_dict(source)
    target = NemotronFlashAutoDeployModel._from_config(config)
    target.load_state_dict(published, strict=False)
    for name, tensor in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[name], tensor, msg=name)
    assert (MEMORY_KEY in published) == bool(config.num_memory_tokens)


@pytest.mark.parametrize("key, value, expected", [("dtype", "bfloat16", torch.bfloat16), ("torch_dtype", torch.float16, torch.float16), ("dtype", None, torch.float32)])
def test_model_is_built_in_the_config_dtype(autodeploy, key, value, expected):
    from trtllm_flash.autodeploy.factory import NemotronFlashAutoDeployModel
    from trtllm_flash.config import NemotronFlashConfig

    config = NemotronFlashConfig.from_preset("tiny")
    setattr(config, key, value)
    with torch.device("meta"):  # upstream's _build_model builds on the meta device
        model = NemotronFlashAutoDeployModel._from_config(config)
    assert {p.dtype for p in model.parameters()} == {expected}
    assert torch.get_default_dtype() == torch.float32


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_our_factory_builds_the_model_through_upstreams_build_model(autodeploy, tmp_path, device):
    """Upstream's _build_model: use_cache=False default, meta-device init + post_init, sharding config from
    model.config; our model class comes out in the checkpoint config's dtype."""
    from transformers import AutoConfig

    from trtllm_flash.autodeploy.factory import TrtllmFlashNemotronFlashFactory, autodeploy_model_class
    from trtllm_flash.config import NemotronFlashConfig

    try:
        AutoConfig.register("nemotron_flash", NemotronFlashConfig)  # what the checkpoint's remote code provides
    except ValueError:
        pass  # registered by an earlier test
    config = NemotronFlashConfig.from_preset("tiny")
    config.dtype = torch.bfloat16
    config.save_pretrained(tmp_path)
    factory = TrtllmFlashNemotronFlashFactory(model=str(tmp_path))
    model = factory._build_model(device)
    assert isinstance(model, autodeploy_model_class()) and not model.training
    assert model.config.use_cache is False
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {(device, torch.bfloat16)}
