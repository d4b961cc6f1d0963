"""The model factory ``TrtllmFlashNemotronFlashForCausalLM`` and the model class AutoDeploy builds.

``model_factory: TrtllmFlashNemotronFlashForCausalLM`` in the YAML selects
:class:`TrtllmFlashNemotronFlashFactory`, a subclass of upstream's ``AutoModelForCausalLMFactory``
(``AD/models/hf.py``, stored version 4115991430) registered with ``ModelFactoryRegistry``
(``AD/models/factory.py`` @ 01d93fe). Upstream's own ``NemotronFlashForCausalLM`` factory
(``AD/models/nemotron_flash.py``) is left untouched: ``ModelFactoryRegistry.register`` silently
overwrites, so we register under our own name and refuse a name held by someone else.

* ``init_tokenizer`` returns our tokenizer (memory tokens prepended to every prompt), built from the
  checkpoint's tokenizer and model config, as upstream's factory does with its own tokenizer class.
* ``register_custom_model_cls("NemotronFlashConfig", NemotronFlashAutoDeployModel)`` on *our* factory
  class (each factory subclass has its own mapping): ``_build_model`` then calls
  ``NemotronFlashAutoDeployModel._from_config(hf_config)``, which builds our
  ``trtllm_flash.modeling.NemotronFlashForCausalLM`` (HF parameter names; a ``load_state_dict``
  pre-hook merges the checkpoint's separate ``model.memory_tokens`` into the embedding, as upstream's
  port does, so a loader going through ``load_state_dict`` fills it).
* Export patches: AutoDeploy's factory API has no per-model export hook (its ``ExportPatchRegistry``
  patches are model-agnostic), so the model class itself runs its forward under
  :func:`trtllm_flash.patches.apply_export_patches` — every mixer calls ONE ``torch.ops.trtllm_flash``
  source op whether AutoDeploy exports or runs it eagerly — and returns ``(logits,)`` because
  AutoDeploy reads ``model(**named_args)[0]``.
"""
from __future__ import annotations

import functools
from typing import Any, Optional, Type

import torch
import torch.nn as nn

from trtllm_flash.autodeploy.upstream import AutoModelForCausalLMFactory, ModelFactoryRegistry

from trtllm_flash.autodeploy.refusal import FACTORY_NAME
#: ``type(hf_config).__name__`` of a Nemotron-Flash checkpoint's config (remote code and ours alike)
CONFIG_CLASS_NAME = "NemotronFlashConfig"


def to_our_config(config: Any):
    """Our :class:`trtllm_flash.config.NemotronFlashConfig` from the (remote-code) HF config AutoDeploy loaded."""
    from trtllm_flash.config import NemotronFlashConfig

    if isinstance(config, NemotronFlashConfig):
        return config
    return NemotronFlashConfig.from_dict(config.to_dict())


@functools.lru_cache(maxsize=None)
def autodeploy_model_class() -> Type[nn.Module]:
    """Our model with AutoDeploy's calling convention (built on first use: the modeling code is only
    imported when AutoDeploy actually builds a model)."""
    from trtllm_flash.loading import LM_HEAD_KEY, MEMORY_KEY, to_model_layout
    from trtllm_flash.modeling import NemotronFlashForCausalLM
    from trtllm_flash.patches import apply_export_patches

    class NemotronFlashForAutoDeploy(NemotronFlashForCausalLM):
        """``forward(input_ids, position_ids) -> (logits,)`` with our export patches applied; loads the
        published checkpoint layout (separate ``model.memory_tokens``) through ``load_state_dict``."""

        def __init__(self, config):
            super().__init__(config)
            self._register_load_state_dict_pre_hook(self._to_model_layout)

        def _to_model_layout(self, state_dict, prefix, *unused):
            if prefix or MEMORY_KEY not in state_dict:
                return
            converted = to_model_layout(dict(state_dict), self.config, "checkpoint")
            if LM_HEAD_KEY in state_dict:
                converted.setdefault(LM_HEAD_KEY, state_dict[LM_HEAD_KEY])
            state_dict.clear()
            state_dict.update(converted)

        def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None, **unused: Any):
            if unused:
                raise TypeError(f"{type(self).__name__}.forward got unexpected inputs {sorted(unused)}")
            with apply_export_patches(self):
                return (super().forward(input_ids, position_ids),)

    return NemotronFlashForAutoDeploy


def config_dtype(config: Any) -> torch.dtype:
    """The parameter dtype a checkpoint's config asks for: ``dtype`` (transformers 5) or ``torch_dtype``
    (4.x), a ``torch.dtype`` or its name; float32 when the config names none (or ``"auto"``)."""
    for key in ("dtype", "torch_dtype"):
        value = getattr(config, key, None)
        if isinstance(value, torch.dtype):
            return value
        if isinstance(value, str) and value != "auto":
            dtype = getattr(torch, value, None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"model config: {key}={value!r} is not a torch dtype")
            return dtype
    return torch.float32


class NemotronFlashAutoDeployModel:
    """What ``register_custom_model_cls`` maps ``NemotronFlashConfig`` to: ``_from_config`` is the one
    hook upstream's ``_build_model`` calls (it also checks ``hasattr(cls, "_from_config")``), inside its
    own meta-device context. The model is built in the config's dtype (the checkpoint's, e.g. bf16), so
    AutoDeploy's ``dtype: auto`` caches follow it, as they do for upstream's own port."""

    @classmethod
    def _from_config(cls, config: Any, **unused_kwargs: Any) -> nn.Module:
        from trtllm_flash.modeling.model import default_dtype

        with default_dtype(config_dtype(config)):
            return autodeploy_model_class()(to_our_config(config))


class TrtllmFlashNemotronFlashFactory(AutoModelForCausalLMFactory):
    """Nemotron-Flash through trtllm-flash's ops: our model class, our tokenizer."""

    def init_tokenizer(self):
        if self.tokenizer is None:
            return None
        from trtllm_flash.loading import load_tokenizer

        model_config, _ = self._get_model_config()
        return load_tokenizer(self.tokenizer, to_our_config(model_config))


def register_model_factory() -> Type[AutoModelForCausalLMFactory]:
    """Register :class:`TrtllmFlashNemotronFlashFactory` under :data:`FACTORY_NAME` (idempotent)."""
    if ModelFactoryRegistry.has(FACTORY_NAME):
        existing = ModelFactoryRegistry.get(FACTORY_NAME)
        if existing is not TrtllmFlashNemotronFlashFactory:
            raise RuntimeError(f"AutoDeploy model factory {FACTORY_NAME!r} is already registered by {existing.__qualname__}")
        return existing
    ModelFactoryRegistry.register(FACTORY_NAME)(TrtllmFlashNemotronFlashFactory)
    TrtllmFlashNemotronFlashFactory.register_custom_model_cls(CONFIG_CLASS_NAME, NemotronFlashAutoDeployModel)
    return TrtllmFlashNemotronFlashFactory
