"""``python -m trtllm_flash.autodeploy.build_and_run_ad [--ad-script PATH] <upstream flags>``.

Registers trtllm-flash with AutoDeploy in this process, then runs upstream's
``examples/auto_deploy/build_and_run_ad.py`` (``runpy``, as ``__main__``) with the remaining flags,
e.g. ``--model nvidia/Nemotron-Flash-3B-Instruct --args.yaml-extra nemotron_flash_trtllm_flash.yaml``.
Needed only where the ``.pth`` start-up hook is not installed; the executor worker still needs the hook
(or ``TLLM_WORKER_USE_SINGLE_PROCESS=1``) to see our registrations.

The upstream script is not part of the tensorrt-llm wheel; it is found at ``--ad-script``, else
``$TRTLLM_FLASH_AD_SCRIPT``, else ``<TensorRT-LLM checkout>/examples/auto_deploy/build_and_run_ad.py``
next to the installed ``tensorrt_llm`` package (source checkouts and the NGC container's
``/app/tensorrt_llm``).
"""
from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from pathlib import Path
from typing import List, Optional, Tuple

SCRIPT_RELATIVE = Path("examples") / "auto_deploy" / "build_and_run_ad.py"
ENV_SCRIPT = "TRTLLM_FLASH_AD_SCRIPT"


def split_script_flag(argv: List[str]) -> Tuple[Optional[str], List[str]]:
    """Take ``--ad-script PATH`` / ``--ad-script=PATH`` out of ``argv``; the rest goes upstream."""
    rest, script = [], None
    args = iter(argv)
    for arg in args:
        if arg == "--ad-script":
            script = next(args, None)
            if script is None:
                raise SystemExit("--ad-script needs a path")
        elif arg.startswith("--ad-script="):
            script = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return script, rest


def find_upstream_script(explicit: Optional[str]) -> Path:
    """The upstream example script, or SystemExit listing where it was looked for."""
    import tensorrt_llm

    candidates = [Path(p) for p in (explicit, os.environ.get(ENV_SCRIPT)) if p]
    package_dir = Path(tensorrt_llm.__file__).resolve().parent
    candidates += [package_dir.parent / SCRIPT_RELATIVE, Path("/app/tensorrt_llm") / SCRIPT_RELATIVE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SystemExit(
        "upstream build_and_run_ad.py not found; pass --ad-script PATH or set "
        f"{ENV_SCRIPT}. Looked at: " + ", ".join(str(c) for c in candidates)
    )


#: what the wrapper prints (and exits with) where TensorRT-LLM is not installed
MISSING_TRTLLM = (
    "TensorRT-LLM is not installed: pip install --extra-index-url https://pypi.nvidia.com "
    "'trtllm-flash[autodeploy]' (docs/AUTODEPLOY.md)"
)


def main(argv: Optional[List[str]] = None) -> None:
    if importlib.util.find_spec("tensorrt_llm") is None:
        raise SystemExit(MISSING_TRTLLM)
    explicit, rest = split_script_flag(sys.argv[1:] if argv is None else argv)
    script = find_upstream_script(explicit)
    from trtllm_flash.autodeploy import register

    register()
    sys.argv = [str(script), *rest]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
