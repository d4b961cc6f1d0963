"""Norm + linear family: importing it registers ``torch.ops.trtllm_flash.rms_norm_linear`` and
``torch.ops.trtllm_flash.add_rms_norm_linear`` (no cache, no descriptor)."""
from trtllm_flash.ops.norm_linear.ops import add_rms_norm_linear, rms_norm_linear

__all__ = ["add_rms_norm_linear", "rms_norm_linear"]
