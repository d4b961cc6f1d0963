"""``AD/models/hf.py``'s ``AutoModelForCausalLMFactory`` as far as building a custom model class goes, for
every generation's stand-in. Mirrors NVIDIA/TensorRT-LLM ``tensorrt_llm/_torch/auto_deploy/models/hf.py``
at stored version 4115991430:

* registered as ``"AutoModelForCausalLM"``; ``__init_subclass__`` gives each subclass its own
  ``_custom_model_mapping``; ``register_custom_model_cls(config_cls_name, cls)``;
* ``_model_defaults = {"use_cache": False}`` deep-merged under the user's ``model_kwargs``;
* ``_get_model_config()``: ``AutoConfig.from_pretrained(model, return_unused_kwargs=True,
  trust_remote_code=True)``, then every ``model_kwargs`` key the config has is set on it (``dtype`` /
  ``torch_dtype`` strings other than "auto" as ``torch.dtype``), the others join the unused kwargs;
* ``_build_model(device)``: the custom class for ``type(config).__name__`` must have ``_from_config``
  and is built with ``_from_config(config, **unused_kwargs)`` inside ``init_empty_weights`` when
  ``device == "meta"`` (here: ``torch.device("meta")``, accelerate not being a dependency), then
  ``post_init()`` if it has one (meta) or ``.to(device)``; ``_set_sharding_config(model.config)``
  (``base_model_tp_plan`` -> ``_sharding_config["tp_plan"]``); ``eval()``.
"""
from contextlib import nullcontext
from typing import Dict, Type

import torch
from transformers import AutoConfig

from .models_factory import ModelFactory, ModelFactoryRegistry


@ModelFactoryRegistry.register("AutoModelForCausalLM")
class AutoModelForCausalLMFactory(ModelFactory):
    _model_defaults = {"use_cache": False}
    _custom_model_mapping: Dict[str, Type] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._custom_model_mapping = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_kwargs = {**self._model_defaults, **self.model_kwargs}

    @classmethod
    def register_custom_model_cls(cls, config_cls_name: str, custom_model_cls: Type) -> None:
        cls._custom_model_mapping[config_cls_name] = custom_model_cls

    def _get_model_config(self):
        config, unused = AutoConfig.from_pretrained(self.model, return_unused_kwargs=True, trust_remote_code=True)
        for key, value in self.model_kwargs.items():
            if not hasattr(config, key):
                unused[key] = value
            elif key in ("torch_dtype", "dtype") and isinstance(value, str) and value != "auto":
                setattr(config, key, getattr(torch, value))
            else:
                setattr(config, key, value)
        return config, unused

    def _build_model(self, device: str):
        model_config, unused_kwargs = self._get_model_config()
        custom_model_cls = self._custom_model_mapping.get(type(model_config).__name__, None)
        if custom_model_cls is None:
            raise NotImplementedError("stand-in: only the custom-model branch is mirrored")
        with (torch.device("meta") if device == "meta" else nullcontext()):
            if not hasattr(custom_model_cls, "_from_config"):
                raise ValueError(f"`{custom_model_cls.__name__}` must have a `_from_config` class method.")
            model = custom_model_cls._from_config(model_config, **unused_kwargs)
        if device == "meta":
            if hasattr(model, "post_init"):
                model.post_init()
        else:
            model.to(device)
        self._set_sharding_config(model.config)
        model.eval()
        return model

    def _set_sharding_config(self, model_config) -> None:
        if hasattr(model_config, "base_model_tp_plan"):
            self._sharding_config["tp_plan"] = model_config.base_model_tp_plan
