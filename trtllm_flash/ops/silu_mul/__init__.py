"""SwiGLU activation family: importing it registers ``torch.ops.trtllm_flash.silu_mul`` (no cache, no
descriptor), the FFN's ``silu(gate) * up`` read straight from the fused gate/up GEMM output."""
from trtllm_flash.ops.silu_mul.ops import silu_mul

__all__ = ["silu_mul"]
