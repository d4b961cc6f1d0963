"""``python -m trtllm_flash.transforms --list [--yaml f.yaml ...]``: print the stage-ordered pipeline."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import yaml

from trtllm_flash.transforms import describe_pipeline, merge_transforms


def _transforms_section(paths: List[str]) -> dict:
    """The ``transforms:`` sections of the YAML files, merged in order (later files win per key)."""
    merged: dict = {}
    for path in paths:
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except OSError as err:
            raise SystemExit(f"error: cannot read {path}: {err.strerror}")
        except yaml.YAMLError as err:
            raise SystemExit(f"error: {path} is not valid YAML: {err}")
        for name, values in (data.get("transforms") or {}).items():
            merged.setdefault(name, {}).update(values or {})
    return merged


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtllm_flash.transforms", description=__doc__)
    parser.add_argument("--list", action="store_true", help="print the pipeline in stage order")
    parser.add_argument("--yaml", action="append", default=[], help="YAML whose transforms: section is merged in (repeatable)")
    args = parser.parse_args(argv)
    if not args.list:
        parser.print_help()
        return 0
    try:
        configs = merge_transforms(_transforms_section(args.yaml))
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    print(f"{'stage':<16} {'transform':<32} state     settings")
    for line in describe_pipeline(configs):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
