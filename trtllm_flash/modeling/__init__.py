"""Eager pure-PyTorch reference of Nemotron-Flash."""
from trtllm_flash.modeling.cache import NemotronFlashCache
from trtllm_flash.modeling.model import NemotronFlashForCausalLM, NemotronFlashModel

__all__ = ["NemotronFlashCache", "NemotronFlashForCausalLM", "NemotronFlashModel"]
