"""FP8-weight linear family: importing it registers ``torch.ops.trtllm_flash.linear_fp8`` (no cache, no
descriptor); :func:`quantize_rows` makes its weights."""
from trtllm_flash.ops.linear_fp8.ops import linear_fp8
from trtllm_flash.ops.linear_fp8.reference import quantize_rows

__all__ = ["linear_fp8", "quantize_rows"]
