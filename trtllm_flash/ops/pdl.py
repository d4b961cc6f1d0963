"""Programmatic dependent launch (PDL) for the batch-1 decode GEMVs.

A decode step is a chain of short kernels; between two of them the GPU drains the first (its last
programs run on a few SMs) and then ramps the second up. With PDL (Hopper and newer) a kernel is
launched while the one before it is still finishing: its programs start, read what no earlier kernel
writes (the weights), then block in ``gdc_wait`` until the previous kernel has finished and its writes
are visible. A GEMV thus streams its first weight tile during the previous kernel's tail.

The rule every PDL kernel keeps: nothing written by an earlier kernel is read, and nothing is written,
before ``gdc_wait``; it calls ``gdc_launch_dependents`` right after, so at most one kernel runs ahead.
Kernels launched without PDL (torch's, cuBLAS) wait for everything before them as usual. CUDA graphs
keep the programmatic edges.

Set ``TRTLLM_FLASH_PDL=0`` to launch without it (for A/B measurements or debugging).
"""
from __future__ import annotations

import functools
import os

import torch

ENV_SWITCH = "TRTLLM_FLASH_PDL"


@functools.lru_cache(maxsize=None)
def _device_supports(index: int) -> bool:
    return torch.cuda.get_device_capability(index)[0] >= 9


def enabled(t: torch.Tensor) -> bool:
    """True when kernels on ``t``'s device launch with PDL: a Hopper-or-newer CUDA device, compiled
    kernels (not the Triton interpreter) and the switch not set to ``0``."""
    if t.device.type != "cuda" or os.environ.get("TRITON_INTERPRET") == "1" or os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    return _device_supports(t.device.index if t.device.index is not None else torch.cuda.current_device())
