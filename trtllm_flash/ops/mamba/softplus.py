"""The ``dt`` transform shared by the Mamba2 Triton kernels."""
import triton
import triton.language as tl


@triton.jit
def softplus_clamped(v, dt_min, dt_max):
    """``clamp(softplus(v), dt_min, dt_max)`` elementwise in fp32, softplus(v) = v above 20 (torch's threshold)."""
    soft = tl.where(v > 20.0, v, tl.log(1.0 + tl.exp(tl.minimum(v, 20.0))))
    return tl.minimum(tl.maximum(soft, dt_min), dt_max)
