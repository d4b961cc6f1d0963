"""Norms family: importing it registers ``torch.ops.trtllm_flash.{rms_norm, add_rms_norm, rms_norm_gated,
l2norm}`` (no cache, no descriptor)."""
from trtllm_flash.ops.norms.ops import add_rms_norm, l2norm, rms_norm, rms_norm_gated

__all__ = ["add_rms_norm", "l2norm", "rms_norm", "rms_norm_gated"]
