"""Helpers the export forwards share."""
from __future__ import annotations

import torch.nn as nn


def module_eps(module: nn.Module, default: float) -> float:
    """A norm module's epsilon, whichever attribute name its class uses (``eps`` / ``variance_epsilon``)."""
    for name in ("eps", "variance_epsilon", "epsilon"):
        value = getattr(module, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return default
