"""Activation: the ``.pth`` start-up hook and the ``build_and_run_ad`` wrapper, each in a fresh
interpreter (subprocess), with and without a ``tensorrt_llm`` importable."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
FAKE_ROOT = Path(__file__).parent / "standins" / "resource_handlers"
SHARED = Path(__file__).parent / "standins" / "shared"
PTH = REPO / "trtllm_flash" / "autodeploy" / "trtllm_flash_autodeploy.pth"


def _run(code: str, site_dir: Path, with_fake: bool, env_extra=None) -> subprocess.CompletedProcess:
    """Run ``code`` after processing ``site_dir`` as a site directory (where the .pth lies).

    Without the stand-in the interpreter also starts without site-packages (``-S``), where an installed
    TensorRT-LLM would live: it sees no ``tensorrt_llm`` on every machine, with the ``[autodeploy]`` extra or not."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRTLLM_FLASH_AUTODEPLOY")}
    paths = [str(REPO)] + ([str(FAKE_ROOT), str(SHARED)] if with_fake else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(env_extra or {})
    prelude = f"import site, sys; site.addsitedir({str(site_dir)!r})\n"
    flags = [] if with_fake else ["-S"]
    return subprocess.run([sys.executable, *flags, "-c", prelude + textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def site_dir(tmp_path):
    shutil.copy(PTH, tmp_path / PTH.name)
    return tmp_path


def test_without_tensorrt_llm_nothing_is_imported_or_registered(site_dir):
    result = _run(
        """
        import importlib.util
        assert importlib.util.find_spec("tensorrt_llm") is None
        import trtllm_flash, trtllm_flash._autodeploy_hook as hook
        assert "trtllm_flash._autodeploy_hook" in sys.modules, "the .pth line did not run"
        assert not hook.install()
        assert not any(type(f).__name__ == "_RegisterAfterImport" for f in sys.meta_path)
        heavy = [m for m in ("torch", "tensorrt_llm", "trtllm_flash.autodeploy", "trtllm_flash.ops") if m in sys.modules]
        assert not heavy, heavy
        print("OK")
        """,
        site_dir,
        with_fake=False,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_with_tensorrt_llm_registration_waits_for_autodeploy_import(site_dir):
    result = _run(
        """
        assert "tensorrt_llm" not in sys.modules and "torch" not in sys.modules
        import tensorrt_llm  # the top package alone does not trigger registration
        assert "trtllm_flash.autodeploy" not in sys.modules
        from tensorrt_llm._torch.auto_deploy.custom_ops.attention_interface import AttentionRegistry
        from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
        from tensorrt_llm._torch.auto_deploy.transform.interface import TransformRegistry
        from trtllm_flash.ops.interface import all_descriptors
        assert all_descriptors() and all(AttentionRegistry.has(n) for n in all_descriptors())
        assert ModelFactoryRegistry.has("TrtllmFlashNemotronFlashForCausalLM")
        assert TransformRegistry.has("trtllm_flash_fuse_mamba_a_log")
        print("OK")
        """,
        site_dir,
        with_fake=True,
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_switch_disables_the_hook(site_dir):
    result = _run(
        """
        import tensorrt_llm._torch.auto_deploy
        assert "trtllm_flash.autodeploy" not in sys.modules
        print("OK")
        """,
        site_dir,
        with_fake=True,
        env_extra={"TRTLLM_FLASH_AUTODEPLOY": "0"},
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_build_and_run_ad_wrapper_registers_then_runs_the_upstream_script(tmp_path):
    script = tmp_path / "build_and_run_ad.py"
    script.write_text(
        "import sys\n"
        "from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry\n"
        "assert __name__ == '__main__'\n"
        "assert ModelFactoryRegistry.has('TrtllmFlashNemotronFlashForCausalLM')\n"
        "print('ARGS', sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(FAKE_ROOT), str(SHARED)])
    env["TRTLLM_FLASH_AUTODEPLOY"] = "0"  # prove the wrapper registers by itself
    result = subprocess.run(
        [sys.executable, "-m", "trtllm_flash.autodeploy.build_and_run_ad", "--model", "m", "--ad-script", str(script), "--args.yaml-extra", "x.yaml"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ARGS ['--model', 'm', '--args.yaml-extra', 'x.yaml']" in result.stdout
