"""The TensorRT-LLM AutoDeploy names the adapter touches in EVERY supported generation, imported in one place.

Nothing else in :mod:`trtllm_flash.autodeploy` imports ``tensorrt_llm`` directly, except each
generation's mapping module (:mod:`.generations`) for the names only its generation has (resource
handlers, ...). ``AD`` below is ``tensorrt_llm/_torch/auto_deploy`` of NVIDIA/TensorRT-LLM; these names
exist, with the meaning the adapter relies on, in both supported generations (docs/AUTODEPLOY.md has the
revisions read):

* ``AD/custom_ops/attention_interface.py``: ``AttentionDescriptor`` (``get_attention_layout``,
  ``get_num_qkv_args``, ``get_source_attention_op``, ``get_cached_attention_op``,
  ``get_standard_metadata_args``, ``get_prepare_extra_metadata_info``, ``get_cache_initializers``,
  ``get_constants``), ``AttentionRegistry`` (``register`` asserts a new name, ``get``, ``has``);
* ``AD/transform/interface.py``: ``BaseTransform`` (``get_config_class``, ``_apply(gm, cm, factory,
  shared_config) -> (gm, TransformInfo)``), ``TransformConfig``, ``TransformInfo``, ``TransformRegistry``
  (``register`` silently replaces, ``get``, ``has``);
* ``AD/models/factory.py``: ``ModelFactoryRegistry`` (``register`` silently overwrites, ``get``, ``has``);
  ``AD/models/hf.py``: ``AutoModelForCausalLMFactory`` (``register_custom_model_cls``, ``_get_model_config``).
"""
from __future__ import annotations

from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface
from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionDescriptor, AttentionRegistry
from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
from tensorrt_llm._torch.auto_deploy.models.hf import AutoModelForCausalLMFactory
from tensorrt_llm._torch.auto_deploy.transform.interface import (
    BaseTransform,
    TransformConfig,
    TransformInfo,
    TransformRegistry,
)

__all__ = [
    "AttentionDescriptor",
    "AttentionRegistry",
    "AutoModelForCausalLMFactory",
    "BaseTransform",
    "ModelFactoryRegistry",
    "TransformConfig",
    "TransformInfo",
    "TransformRegistry",
    "attention_interface",
]
