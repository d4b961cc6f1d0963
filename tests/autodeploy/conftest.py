"""Fixtures of the AutoDeploy contract tests: the labelled stand-in of TensorRT-LLM's API surface
(``fake_tensorrt_llm/``) is put on ``sys.path`` for this folder's tests only, and removed after them."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKE_ROOT = Path(__file__).parent / "fake_tensorrt_llm"


@pytest.fixture(scope="package")
def autodeploy():
    """The stand-in ``tensorrt_llm._torch.auto_deploy`` with trtllm-flash registered into it."""
    if "tensorrt_llm" in sys.modules and not sys.modules["tensorrt_llm"].__file__.startswith(str(FAKE_ROOT)):
        pytest.skip("a real tensorrt_llm is imported; these tests drive the stand-in")
    sys.path.insert(0, str(FAKE_ROOT))
    try:
        import tensorrt_llm._torch.auto_deploy as ad
        from ad_harness import CASES, require_family

        from trtllm_flash.autodeploy import register

        for case in CASES.values():
            require_family(case)  # imports every family's op module

        ad.registration = register()
        yield ad
    finally:
        sys.path.remove(str(FAKE_ROOT))
        for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
            del sys.modules[name]
