"""trtllm-flash's face for TensorRT-LLM AutoDeploy (imported only where ``tensorrt_llm`` imports).

:func:`register` puts, into AutoDeploy's registries of the running process:

* one ``AttentionDescriptor`` per op family under our backend names (:mod:`.descriptors`), selected in
  the YAML with ``insert_cached_attention: {backend: trtllm_flash_attention}`` etc.;
* our graph passes as ``trtllm_flash_<name>`` transforms (:mod:`.transforms`);
* the ``TrtllmFlashNemotronFlashForCausalLM`` model factory (:mod:`.factory`).

It is called automatically when AutoDeploy is imported, in every process (the executor worker too),
by the start-up hook :mod:`trtllm_flash._autodeploy_hook`; calling it again is a no-op.

Targets tensorrt-llm 1.2.1 (RH-3 descriptor generation); :mod:`.upstream` lists every upstream name
used, with the file and revision it was written against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import trtllm_flash.ops  # noqa: F401  (registers every op family's ops and descriptor)
from trtllm_flash.autodeploy.upstream import TARGET_TRTLLM_VERSION, check_generation


@dataclass(frozen=True)
class Registration:
    """What :func:`register` put into AutoDeploy: backend / transform key / factory name -> class."""

    attention_backends: Dict[str, type]
    transforms: Dict[str, type]
    model_factory: str


def register() -> Registration:
    """Register our descriptors, transforms and model factory with AutoDeploy (idempotent)."""
    check_generation()
    from trtllm_flash.autodeploy.descriptors import register_attention_descriptors
    from trtllm_flash.autodeploy.factory import FACTORY_NAME, register_model_factory
    from trtllm_flash.autodeploy.transforms import register_transforms

    backends = register_attention_descriptors()
    transforms = register_transforms()
    register_model_factory()
    return Registration(attention_backends=backends, transforms=transforms, model_factory=FACTORY_NAME)


__all__ = ["Registration", "TARGET_TRTLLM_VERSION", "register"]
