"""Where trtllm-flash cannot work with the installed AutoDeploy, the user sees why: the start-up hook warns
with the cause and leaves a factory under our name that raises it (instead of upstream's later "does not
exist in the model factory registry"); the wrapper without TensorRT-LLM prints one line saying what to
install. Each in a fresh interpreter."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).parent / "standins"
PTH = REPO / "trtllm_flash" / "autodeploy" / "trtllm_flash_autodeploy.pth"


def _env(*paths: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRTLLM_FLASH_AUTODEPLOY")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (REPO, *paths))
    return env


def test_unsupported_generation_is_reported_where_our_factory_is_used(tmp_path):
    oldest = tmp_path / "oldest"
    shutil.copytree(STANDINS / "resource_handlers", oldest, ignore=shutil.ignore_patterns("__pycache__"))
    interface = oldest / "tensorrt_llm" / "_torch" / "auto_deploy" / "custom_ops" / "attention_interface.py"
    marker = "\n\nAttentionDescriptor.get_prepare_metadata_op = classmethod(lambda cls: None)  # the oldest generation's hook\n"
    interface.write_text(interface.read_text() + marker)
    shutil.copy(PTH, tmp_path / PTH.name)
    code = f"""
        import site, warnings
        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            site.addsitedir({str(tmp_path)!r})
            import tensorrt_llm._torch.auto_deploy
        from tensorrt_llm._torch.auto_deploy.models.factory import ModelFactoryRegistry
        from trtllm_flash.autodeploy import UnsupportedAutoDeployVersion
        assert any("not a generation trtllm-flash supports" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert ModelFactoryRegistry.has("TrtllmFlashNemotronFlashForCausalLM")
        try:
            ModelFactoryRegistry.get("TrtllmFlashNemotronFlashForCausalLM")(model="m")
        except UnsupportedAutoDeployVersion as err:
            print("RAISED", err)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(oldest, STANDINS / "shared"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "RAISED trtllm-flash cannot register with TensorRT-LLM 1.3.0rc0" in result.stdout
    assert "get_prepare_metadata_op=yes" in result.stdout and "supports (cache_config, resource_handlers, batch_info" in result.stdout


def test_wrapper_without_tensorrt_llm_prints_one_line_saying_what_to_install():
    # -S: no site-packages, where an installed TensorRT-LLM would be found (the wrapper needs none of them)
    result = subprocess.run(
        [sys.executable, "-S", "-m", "trtllm_flash.autodeploy.build_and_run_ad", "--help"], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install --extra-index-url https://pypi.nvidia.com 'trtllm-flash[autodeploy]'" in lines[0]
