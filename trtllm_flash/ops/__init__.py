"""Token-mixer ops, one folder per family; importing this package registers every op and descriptor
in ``torch.ops.trtllm_flash`` and :mod:`trtllm_flash.ops.interface`."""
from trtllm_flash.ops import argmax, attention, causal_conv, delta_rule, linear, linear_fp8, mamba, norm_linear, norms, rope, silu_mul  # noqa: F401
