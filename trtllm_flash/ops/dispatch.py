"""The one place that decides which implementation a custom op runs.

Every op family has a validated pure-torch reference (the op's body) and a fast implementation (Triton /
fla kernels). :func:`register_fast` registers the fast one for CUDA tensors; CPU tensors take the
reference unless :func:`fast_kernels_on_cpu` is active, which sends them through the very same fast
implementation under the Triton interpreter (``TRITON_INTERPRET=1``). That is a test switch: it lets the
CPU test suite run the kernels the GPU runs (end-to-end parity through the fast paths), and it is never
on outside a ``with`` block.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator, Optional

from torch._library.custom_ops import CustomOpDef

_fast_on_cpu = False


def kernels_interpreted() -> bool:
    """True when ``@triton.jit`` kernels run in the Triton interpreter (read at kernel import time)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


@contextlib.contextmanager
def fast_kernels_on_cpu() -> Iterator[None]:
    """Within the block, CPU tensors take each op's fast (Triton / fla) implementation, interpreted."""
    global _fast_on_cpu
    if not kernels_interpreted():
        raise RuntimeError("fast_kernels_on_cpu needs TRITON_INTERPRET=1 set before the kernels are imported")
    previous, _fast_on_cpu = _fast_on_cpu, True
    try:
        yield
    finally:
        _fast_on_cpu = previous


def register_fast(op: CustomOpDef, fast: Optional[Callable] = None) -> Callable:
    """Register ``fast`` as ``op``'s implementation for CUDA tensors, and for CPU tensors within
    :func:`fast_kernels_on_cpu` (else they take the op's reference body). Returns ``fast``; without
    ``fast`` it is a decorator."""
    if fast is None:
        return lambda fn: register_fast(op, fn)
    reference = op._init_fn
    op.register_kernel("cuda")(fast)

    def cpu(*args, **kwargs):
        return (fast if _fast_on_cpu else reference)(*args, **kwargs)

    op.register_kernel("cpu")(cpu)
    return fast
