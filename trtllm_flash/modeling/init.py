"""Seeded random initialisation of the reference model (presets have no checkpoint)."""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from trtllm_flash.modeling.mamba2 import NemotronFlashMamba2
from trtllm_flash.modeling.norms import RMSNorm, RMSNormGated

#: Mamba2's dt initialisation: log-uniform in [DT_MIN, DT_MAX], floored at DT_FLOOR
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4
#: Mamba2's A initialisation: A_log = log(U(A_LOW, A_HIGH))
A_LOW, A_HIGH = 1.0, 16.0


@torch.no_grad()
def init_weights(model: nn.Module, initializer_range: float, seed: int) -> None:
    """Initialise every parameter of ``model`` in place from ``seed`` (on the parameters' device).

    Linear and embedding weights ~ normal(0, initializer_range); depthwise conv weights and biases ~
    U(-1/sqrt(k), 1/sqrt(k)) (PyTorch's default range); norm weights 1; Mamba2 ``A_log = log(U(1, 16))``,
    ``dt_bias = softplus^-1(dt)`` with dt log-uniform in [1e-3, 1e-1], ``D = 1``. Meta tensors are skipped.
    """
    device = next(model.parameters()).device
    if device.type == "meta":
        return
    gen = torch.Generator(device=device).manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.normal_(0.0, initializer_range, generator=gen)
        elif isinstance(module, nn.Conv1d):
            bound = 1.0 / math.sqrt(module.weight.shape[-1])
            module.weight.uniform_(-bound, bound, generator=gen)
            if module.bias is not None:
                module.bias.uniform_(-bound, bound, generator=gen)
        elif isinstance(module, (RMSNorm, RMSNormGated)):
            module.weight.fill_(1.0)
        elif isinstance(module, NemotronFlashMamba2):
            _init_mamba_scalars(module, gen)


def _init_mamba_scalars(module: NemotronFlashMamba2, gen: torch.Generator) -> None:
    heads = module.A_log.shape[0]
    a = torch.empty(heads, device=module.A_log.device, dtype=torch.float32).uniform_(A_LOW, A_HIGH, generator=gen)
    module.A_log.copy_(torch.log(a))
    u = torch.rand(heads, device=a.device, dtype=torch.float32, generator=gen)
    dt = torch.exp(u * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)).clamp(min=DT_FLOOR)
    module.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
    module.D.fill_(1.0)
