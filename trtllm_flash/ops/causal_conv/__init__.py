"""Causal conv1d family: importing it registers ``torch.ops.trtllm_flash.causal_conv1d``,
``torch.ops.trtllm_flash.cached_causal_conv1d`` and the ``trtllm_flash_causal_conv`` descriptor."""
from trtllm_flash.ops.causal_conv.cached import cached_causal_conv1d
from trtllm_flash.ops.causal_conv.descriptor import CausalConvDescriptor
from trtllm_flash.ops.causal_conv.reference import causal_conv1d_reference, conv_step
from trtllm_flash.ops.causal_conv.source import causal_conv1d

__all__ = ["cached_causal_conv1d", "CausalConvDescriptor", "causal_conv1d", "causal_conv1d_reference", "conv_step"]
