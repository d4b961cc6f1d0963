"""Token-mixer ops, one folder per family; importing this package registers every op and descriptor
in ``torch.ops.trtllm_flash`` and :mod:`trtllm_flash.ops.interface`."""
from trtllm_flash.ops import delta_rule, norms  # noqa: F401
