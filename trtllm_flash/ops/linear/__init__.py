"""Linear family: importing it registers ``torch.ops.trtllm_flash.linear`` (no cache, no descriptor)."""
from trtllm_flash.ops.linear.ops import linear

__all__ = ["linear"]
