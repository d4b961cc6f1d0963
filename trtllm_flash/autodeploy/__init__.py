"""trtllm-flash's face for TensorRT-LLM AutoDeploy (imported only where ``tensorrt_llm`` imports).

:func:`register` puts, into AutoDeploy's registries of the running process:

* one ``AttentionDescriptor`` per op family under our backend names (:mod:`.descriptors`), selected in
  the YAML with ``insert_cached_attention: {backend: trtllm_flash_attention}`` etc.;
* our graph passes as ``trtllm_flash_<name>`` transforms (:mod:`.transforms`);
* the ``TrtllmFlashNemotronFlashForCausalLM`` model factory (:mod:`.factory`).

It is called automatically when AutoDeploy is imported, in every process (the executor worker too),
by the start-up hook :mod:`trtllm_flash._autodeploy_hook`; calling it again is a no-op.

The installed AutoDeploy API generation is detected from its features (:mod:`.generations`); each
supported generation has one thin mapping module, anything else raises
:class:`~.generations.UnsupportedAutoDeployVersion` naming the installed version, what was detected and
what is supported. :mod:`.upstream` lists the upstream names every generation shares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from trtllm_flash.autodeploy.generations import UnsupportedAutoDeployVersion


@dataclass(frozen=True)
class Registration:
    """What :func:`register` put into AutoDeploy: backend / transform key / factory name -> class."""

    generation: str
    attention_backends: Dict[str, type]
    transforms: Dict[str, type]
    model_factory: str


def register() -> Registration:
    """Register our descriptors, transforms and model factory with AutoDeploy (idempotent)."""
    from tensorrt_llm._torch.auto_deploy.custom_ops import attention_interface

    from trtllm_flash.autodeploy.generations import detect, mapping_module

    generation, found = detect(attention_interface)
    mapping = mapping_module(generation)
    import trtllm_flash.ops  # noqa: F401  (registers every op family's ops and descriptor)
    from trtllm_flash.autodeploy.descriptors import register_attention_descriptors
    from trtllm_flash.autodeploy.factory import FACTORY_NAME, register_model_factory
    from trtllm_flash.autodeploy.transforms import register_transforms

    backends = register_attention_descriptors(mapping, drop_mask_argument=found.custom_mask_arg)
    transforms = register_transforms(mapping)
    register_model_factory()
    return Registration(generation=generation, attention_backends=backends, transforms=transforms, model_factory=FACTORY_NAME)


__all__ = ["Registration", "UnsupportedAutoDeployVersion", "register"]
