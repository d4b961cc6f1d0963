"""The floating dtypes every op takes for activations and weights, and the check that names the argument."""
from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def check_float(name: str, t: torch.Tensor) -> None:
    """ValueError naming ``name`` unless ``t`` is float32, bfloat16 or float16."""
    if t.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be float32, bfloat16 or float16, got {t.dtype}")
