"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/models/hf.py`` (stored version 4115991430):
``AutoModelForCausalLMFactory`` registered as "AutoModelForCausalLM", ``__init_subclass__`` giving each
subclass its own ``_custom_model_mapping``, ``register_custom_model_cls(config_cls_name, cls)``,
``_get_model_config() -> (config, unused_kwargs)`` and ``_build_model(device)``'s custom-class branch
(``type(config).__name__`` looked up, ``_from_config(config, **unused)`` required)."""
from typing import Dict, Type

from transformers import AutoConfig

from .models_factory import ModelFactory, ModelFactoryRegistry


@ModelFactoryRegistry.register("AutoModelForCausalLM")
class AutoModelForCausalLMFactory(ModelFactory):
    _custom_model_mapping: Dict[str, Type] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._custom_model_mapping = {}

    @classmethod
    def register_custom_model_cls(cls, config_cls_name: str, custom_model_cls: Type) -> None:
        cls._custom_model_mapping[config_cls_name] = custom_model_cls

    def _get_model_config(self):
        model_config, unused_kwargs = AutoConfig.from_pretrained(self.model, return_unused_kwargs=True, trust_remote_code=True)
        return model_config, unused_kwargs

    def _build_model(self, device: str):
        model_config, unused_kwargs = self._get_model_config()
        custom_model_cls = self._custom_model_mapping.get(type(model_config).__name__, None)
        if custom_model_cls is None:
            raise NotImplementedError("stand-in: only the custom-model branch is mirrored")
        if not hasattr(custom_model_cls, "_from_config"):
            raise ValueError(f"`{custom_model_cls.__name__}` must have a `_from_config` class method.")
        model = custom_model_cls._from_config(model_config, **unused_kwargs)
        model.to(device)
        model.eval()
        return model
