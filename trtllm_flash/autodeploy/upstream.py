"""Every TensorRT-LLM AutoDeploy name the adapter touches, imported in one place.

This module is the adapter's dependency manifest: nothing else in :mod:`trtllm_flash.autodeploy`
imports ``tensorrt_llm`` directly, and ``tests/autodeploy/fake_tensorrt_llm/`` stands in for exactly
these names. ``AD`` below is ``tensorrt_llm/_torch/auto_deploy`` of NVIDIA/TensorRT-LLM.

Target: tensorrt-llm 1.2.1 (the ``autodeploy`` extra), i.e. the "RH-3" generation of the descriptor
API — resource handlers + a 3-int ``batch_info_host`` ``[num_prefill, num_prefill_tokens, num_decode]``.
The wheel cannot be installed where this was written; the names were read from these stored upstream
revisions (ids are the code index's stored-version ids / commits):

* ``AD/custom_ops/attention_interface.py`` — stored version 46243425432 (71,285 chars, SPDX 2022-2026):
  ``AttentionDescriptor``, ``AttentionRegistry``, ``ResourceHandler``, ``KVPagedResourceHandler``,
  ``StateResourceHandler``, ``SSMResourceHandler``, ``CausalConvResourceHandler``, ``SequenceInfo``
  (args ``batch_info_host``, ``cu_seqlen``, ``input_pos``, ``slot_idx``, ``use_initial_states``,
  ``cu_num_pages``, ``cache_loc``, ``max_seq_info_host``);
* ``AD/custom_ops/fla/fla_backend_delta.py`` @ 0a70ba33 and ``AD/custom_ops/mamba/mamba_backend_common.py``
  @ 13043198 — how RH-3 backends use those names;
* ``AD/transform/interface.py`` (30.7k-char revision) — ``BaseTransform``, ``TransformConfig``,
  ``TransformInfo``, ``TransformRegistry``, ``Stages``;
* ``AD/models/factory.py`` @ 01d93fe — ``ModelFactoryRegistry``; ``AD/models/hf.py`` (stored version
  4115991430) — ``AutoModelForCausalLMFactory`` and ``register_custom_model_cls``;
* ``tensorrt_llm/llmapi/llm_args.py`` — ``KvCacheConfig`` (``dtype``, ``tokens_per_block``).

:func:`check_generation` refuses any other generation loudly instead of mis-reading metadata.
"""
from __future__ import annotations

from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface
from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import (
    AttentionDescriptor,
    AttentionRegistry,
    CausalConvResourceHandler,
    KVPagedResourceHandler,
    ResourceHandler,
    SequenceInfo,
    SSMResourceHandler,
    StateResourceHandler,
)
from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
from tensorrt_llm._torch.auto_deploy.models.hf import AutoModelForCausalLMFactory
from tensorrt_llm._torch.auto_deploy.transform.interface import (
    BaseTransform,
    Stages,
    TransformConfig,
    TransformInfo,
    TransformRegistry,
)

#: the TensorRT-LLM release the adapter is written for (pyproject's ``autodeploy`` extra)
TARGET_TRTLLM_VERSION = "1.2.1"

__all__ = [
    "AttentionDescriptor",
    "AttentionRegistry",
    "AutoModelForCausalLMFactory",
    "BaseTransform",
    "CausalConvResourceHandler",
    "KVPagedResourceHandler",
    "ModelFactoryRegistry",
    "ResourceHandler",
    "SSMResourceHandler",
    "SequenceInfo",
    "Stages",
    "StateResourceHandler",
    "TARGET_TRTLLM_VERSION",
    "TransformConfig",
    "TransformInfo",
    "TransformRegistry",
    "check_generation",
]


class UnsupportedAutoDeployVersion(RuntimeError):
    """The installed AutoDeploy is not the RH-3 generation the adapter targets."""


def check_generation() -> None:
    """Raise :class:`UnsupportedAutoDeployVersion` unless AutoDeploy is the RH-3 generation.

    The newer generation wraps ``batch_info_host`` in a 12-int ``BatchInfo``; our cached ops read the
    3-int layout, so running them there would silently mis-split prefill and decode tokens.
    """
    if hasattr(attention_interface, "BatchInfo"):
        raise UnsupportedAutoDeployVersion(
            "trtllm-flash's AutoDeploy adapter targets tensorrt-llm "
            f"{TARGET_TRTLLM_VERSION} (3-int batch_info_host); the installed AutoDeploy has the 12-int "
            "BatchInfo generation. Install tensorrt-llm==" + TARGET_TRTLLM_VERSION + " (pip install 'trtllm-flash[autodeploy]')."
        )
