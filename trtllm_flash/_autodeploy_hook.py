"""Start-up hook: register trtllm-flash with AutoDeploy in every process that imports it.

Run by the ``trtllm_flash_autodeploy.pth`` file installed into site-packages beside the package, so
it also runs in TensorRT-LLM's separately spawned executor workers (where the optimizer looks our
backends, transforms and factory up). It costs almost nothing:

* without ``tensorrt_llm`` installed it only asks ``importlib.util.find_spec`` and returns — no
  torch, no tensorrt_llm import, nothing registered;
* with it, it adds one finder to ``sys.meta_path`` that waits for ``tensorrt_llm._torch.auto_deploy``
  to be imported by someone, and calls :func:`trtllm_flash.autodeploy.register` right after that
  package finished importing (so ``LlmArgs`` validation of ``model_factory:`` already sees our name).

Set ``TRTLLM_FLASH_AUTODEPLOY=0`` to switch the hook off.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import warnings

#: the package whose import triggers registration
AUTODEPLOY_PACKAGE = "tensorrt_llm._torch.auto_deploy"
#: environment switch; "0" disables the hook
ENV_SWITCH = "TRTLLM_FLASH_AUTODEPLOY"


def register_now() -> None:
    """Register with AutoDeploy. A failure must not break tensorrt_llm's import (users who do not select
    trtllm-flash keep working), nor hide behind a later "not in the model factory registry": it warns,
    naming the cause, and puts a stand-in factory under our name that raises the same cause when a YAML
    selects it (:mod:`trtllm_flash.autodeploy.refusal`)."""
    try:
        from trtllm_flash.autodeploy import register

        register()
    except Exception as err:  # noqa: BLE001  (the user's TensorRT-LLM import must survive)
        warnings.warn(f"trtllm-flash could not register with TensorRT-LLM AutoDeploy: {type(err).__name__}: {err}", RuntimeWarning, stacklevel=2)
        from trtllm_flash.autodeploy.refusal import register_refusal

        register_refusal(err)


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """One-shot finder: lets the other finders locate :data:`AUTODEPLOY_PACKAGE`, then wraps that
    spec's loader so :func:`register_now` runs right after the package executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != AUTODEPLOY_PACKAGE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_and_register(module):
            execute(module)
            register_now()

        spec.loader.exec_module = exec_and_register  # this loader instance serves this one module
        return spec


def install() -> bool:
    """Arrange registration for when AutoDeploy is imported; True when armed (or done)."""
    if os.environ.get(ENV_SWITCH, "1") == "0" or importlib.util.find_spec("tensorrt_llm") is None:
        return False
    if AUTODEPLOY_PACKAGE in sys.modules:
        register_now()
        return True
    if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
    return True
