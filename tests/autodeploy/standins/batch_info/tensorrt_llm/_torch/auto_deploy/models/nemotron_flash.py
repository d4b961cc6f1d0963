"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/models/nemotron_flash.py`` (SPDX 2024-2026): upstream's
own factory name "NemotronFlashForCausalLM", which trtllm-flash must not shadow."""
from .factory import ModelFactoryRegistry
from .hf import AutoModelForCausalLMFactory


@ModelFactoryRegistry.register("NemotronFlashForCausalLM")
class NemotronFlashForCausalLMFactory(AutoModelForCausalLMFactory):
    pass
