"""Fixtures of the AutoDeploy contract tests.

``autodeploy`` runs every test that uses it once per AutoDeploy API generation the adapter supports,
against that generation's labelled stand-in (``standins/<generation>/tensorrt_llm``, put on ``sys.path``
for the fixture's lifetime only), and once more against a real ``tensorrt_llm`` when one is installed
(``pytest tests/autodeploy`` on a TensorRT-LLM machine checks the real thing). Between two of them the
``tensorrt_llm`` modules and the adapter's modules that import them are dropped from ``sys.modules``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

STANDINS = Path(__file__).parent / "standins"
SHARED = STANDINS / "shared"
GENERATIONS = sorted(p.name for p in STANDINS.iterdir() if (p / "tensorrt_llm").is_dir())
INSTALLED = "installed"
#: adapter modules that never import tensorrt_llm (they define torch ops, which cannot be defined twice)
KEEP = {"trtllm_flash.autodeploy", "trtllm_flash.autodeploy.metadata", "trtllm_flash.autodeploy.refusal", "trtllm_flash.autodeploy.generations"}


def _purge() -> None:
    for name in list(sys.modules):
        upstream = name.split(".")[0] in ("tensorrt_llm", "ad_standin")
        adapter = name.startswith("trtllm_flash.autodeploy.") and name not in KEEP
        if upstream or adapter:
            del sys.modules[name]


def _targets():
    real = importlib.util.find_spec("tensorrt_llm") is not None
    return ([INSTALLED] if real else []) + GENERATIONS


@pytest.fixture(scope="package", params=_targets())
def autodeploy(request):
    """``tensorrt_llm._torch.auto_deploy`` (stand-in or real) with trtllm-flash registered into it;
    ``.registration`` is what :func:`trtllm_flash.autodeploy.register` returned, ``.target`` the param."""
    _purge()
    paths = [] if request.param == INSTALLED else [str(STANDINS / request.param), str(SHARED)]
    sys.path[:0] = paths
    try:
        import tensorrt_llm._torch.auto_deploy as ad
        from ad_harness import CASES, require_family

        from trtllm_flash.autodeploy import register

        for case in CASES.values():
            require_family(case)  # imports every family's op module

        ad.registration = register()
        ad.target = request.param
        yield ad
    finally:
        for path in paths:
            sys.path.remove(path)
        _purge()
