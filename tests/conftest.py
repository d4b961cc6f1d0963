"""Test-wide set-up, the same on every machine.

* The default run (``pytest tests``, or any ``-m`` that does not select ``gpu``) is the CPU suite: it hides
  any GPU (``CUDA_VISIBLE_DEVICES=""``) and runs Triton kernels in the interpreter (``TRITON_INTERPRET=1``),
  so the CPU tests see the same torch and Triton on a GPU machine as on a CPU-only one, and their CPU
  tensors never reach a compiled kernel. ``@pytest.mark.gpu`` tests skip in it.
* ``pytest -m gpu`` on a CUDA machine runs the GPU tests, with compiled kernels.

Both variables must be set before torch initialises CUDA and before any ``@triton.jit`` module is imported;
``pytest_configure`` runs before the test modules are collected, and nothing here touches CUDA earlier.
"""
import os

import pytest
import torch

GPU_RUN = False  # set by pytest_configure: this run is the GPU tests on a CUDA machine


def _selects_gpu_tests(markexpr: str) -> bool:
    return "gpu" in markexpr and "not gpu" not in markexpr


def pytest_configure(config):
    global GPU_RUN
    if _selects_gpu_tests(config.option.markexpr or ""):
        GPU_RUN = torch.cuda.is_available()
        if GPU_RUN:
            return
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["TRITON_INTERPRET"] = "1"
    if torch.cuda.is_available():
        raise pytest.UsageError("CUDA was initialised before tests/conftest.py could hide it; the CPU suite cannot run")


def pytest_collection_modifyitems(config, items):
    if GPU_RUN:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU: run `pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
