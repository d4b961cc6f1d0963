"""RoPE family: importing it registers ``torch.ops.trtllm_flash.rope`` (no cache, no descriptor)."""
from trtllm_flash.ops.rope.ops import rope

__all__ = ["rope"]
