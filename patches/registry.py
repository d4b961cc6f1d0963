"""Which forward replaces which module class, and the context manager that swaps them in.

Patches are per *instance* (``module.forward`` set on the object, removed on exit), so the class and every
module outside the patched model stay untouched, and the model is restored even when export fails.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch.nn as nn


@dataclass(frozen=True)
class ExportPatch:
    """``forward`` replaces the forward of modules whose class name is in ``class_names``."""

    name: str
    class_names: Tuple[str, ...]
    forward: Callable
    applies: Callable[[nn.Module], bool] = lambda module: True


PATCHES: List[ExportPatch] = []


def register_patch(name: str, class_names: Tuple[str, ...], applies: Callable[[nn.Module], bool] = lambda m: True):
    """Decorator: register ``forward`` as the export forward of the named module classes."""

    def wrap(forward: Callable) -> Callable:
        PATCHES.append(ExportPatch(name, tuple(class_names), forward, applies))
        return forward

    return wrap


def patch_for(module: nn.Module) -> Optional[ExportPatch]:
    """The patch that applies to ``module`` (None when its class is not patched)."""
    cls_name = type(module).__name__
    for patch in PATCHES:
        if cls_name in patch.class_names and patch.applies(module):
            return patch
    return None


@contextlib.contextmanager
def apply_export_patches(model: nn.Module) -> Iterator[Dict[str, int]]:
    """Within the block, every patched submodule of ``model`` runs its export forward.

    Yields ``{patch name: number of modules patched}``.
    """
    _load_patch_modules()
    patched: List[nn.Module] = []
    counts: Dict[str, int] = {}
    try:
        for module in model.modules():
            patch = patch_for(module)
            if patch is None:
                continue
            if "forward" in vars(module):
                raise RuntimeError(f"{type(module).__name__} already has an instance-level forward; is it patched twice?")
            module.forward = types.MethodType(patch.forward, module)
            patched.append(module)
            counts[patch.name] = counts.get(patch.name, 0) + 1
        yield counts
    finally:
        for module in patched:
            del module.forward


def _load_patch_modules() -> None:
    from trtllm_flash.patches import attention, deltanet, mamba2, norms  # noqa: F401  (registration)
