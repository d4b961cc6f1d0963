"""Attention family: importing it registers ``torch.ops.trtllm_flash.attention``,
``torch.ops.trtllm_flash.cached_attention`` and the ``trtllm_flash_attention`` descriptor."""
from trtllm_flash.ops.attention.cached_op import cached_attention, cached_attention_fast
from trtllm_flash.ops.attention.descriptor import AttentionDescriptor
from trtllm_flash.ops.attention.reference import attention_reference, masked_attention
from trtllm_flash.ops.attention.source_op import attention, attention_fast

__all__ = [
    "AttentionDescriptor",
    "attention",
    "attention_fast",
    "attention_reference",
    "cached_attention",
    "cached_attention_fast",
    "masked_attention",
]
