"""``python -m trtllm_flash.transforms --list [--yaml f.yaml ...]``: print the stage-ordered pipeline that
``build_model`` runs for those LLM-args YAML files (their ``transforms:`` sections plus the top-level
shortcuts such as ``compile_backend`` and ``cuda_graph_batch_sizes``)."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from trtllm_flash.build import transform_overrides
from trtllm_flash.llm_args import load_llm_args
from trtllm_flash.transforms import describe_pipeline, merge_transforms


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtllm_flash.transforms", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the pipeline in stage order")
    parser.add_argument("--yaml", action="append", default=[], help="LLM-args YAML, merged in order (repeatable)")
    args = parser.parse_args(argv)
    if not args.list:
        parser.print_help()
        return 0
    try:
        llm_args = load_llm_args(args.yaml, {})
        configs = merge_transforms(transform_overrides(llm_args.for_build()))
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    print(f"{'stage':<16} {'transform':<32} state     settings")
    for line in describe_pipeline(configs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
