"""Export forward of the RMSNorm modules: ``y = rms_norm(x, weight, eps)`` (one ``trtllm_flash.rms_norm`` node).

Matches our ``RMSNorm`` and the remote code's ``NemotronFlashRMSNorm`` (fp32 compute, cast back, times weight)
when they carry a ``weight`` of the normalised dim.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from trtllm_flash.patches.common import module_eps
from trtllm_flash.patches.registry import register_patch


def _has_weight(module: nn.Module) -> bool:
    return isinstance(getattr(module, "weight", None), torch.Tensor) and module.weight.dim() == 1


@register_patch("rms_norm", ("RMSNorm", "NemotronFlashRMSNorm"), applies=_has_weight)
def rms_norm_forward(self: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    return torch.ops.trtllm_flash.rms_norm(hidden_states, self.weight, module_eps(self))
