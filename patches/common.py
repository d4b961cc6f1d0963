"""Helpers the export forwards share."""
from __future__ import annotations

import math

import torch.nn as nn

EPS_ATTRIBUTES = ("eps", "variance_epsilon", "epsilon")


def module_eps(module: nn.Module) -> float:
    """A norm module's epsilon, whichever attribute name its class uses (``eps`` / ``variance_epsilon`` /
    ``epsilon``). A norm without one, or with one that is not a positive finite number, is a ``ValueError``
    naming the module class and the value: the exported graph never falls back to a made-up epsilon."""
    for name in EPS_ATTRIBUTES:
        if hasattr(module, name):
            value = getattr(module, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{type(module).__name__}.{name} must be a positive number, got {value!r}")
            return float(value)
    raise ValueError(f"{type(module).__name__} has no epsilon attribute (one of {', '.join(EPS_ATTRIBUTES)})")
