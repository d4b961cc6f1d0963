"""Build a Nemotron-Flash model through trtllm-flash and generate: upstream AutoDeploy's CLI shape.

    python build_and_run_ad.py --model nemotron-flash-demo --args.yaml-extra nemotron_flash.yaml \\
        [--args.<field>=<value> ...] [--prompt.batch_size N] [--prompt.queries '["a", "b"]'] \\
        [--prompt.sp_kwargs '{max_tokens: 32, temperature: 0}'] [--benchmark.enabled true] [--dry_run]

``--model`` is ``nemotron-flash-demo`` (a small trained model shipped in the package: readable text), a preset
name (tiny, nemotron-flash-1b, ...: random weights), a local checkpoint directory, or a Hugging Face id already
in the local cache (nothing can be downloaded here). Values are parsed as YAML, so lists and
dicts can be given inline; ``--group.field value`` and ``--group.field=value`` both work and ``-`` and
``_`` are interchangeable in field names. Bad input ends with one line on stderr saying what to change
(exit status 2); a prompt the engine refuses or fails is printed with its error and the exit status is 1.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

import yaml

from trtllm_flash.console import printable

DEFAULT_QUERIES = [
    "How big is the universe? ",
    "In simple words and a single sentence, explain the concept of gravity: ",
    "How to fix slicing in golf? ",
    "Where is the capital of Iceland? ",
]
PROMPT_FIELDS = {"batch_size": 2, "queries": DEFAULT_QUERIES, "sp_kwargs": {"max_tokens": 100, "top_k": 200, "temperature": 1.0}}
PRESETS = ("nemotron-flash-demo", "tiny", "nemotron-flash-1b", "nemotron-flash-3b", "nemotron-flash-3b-tp")
BENCHMARK_FIELDS = {"enabled": False, "num": 10, "isl": 128, "osl": 128, "bs": 1}


HELP = """usage: build_and_run_ad.py --model MODEL [options]

Build a Nemotron-Flash model through trtllm-flash and generate (upstream AutoDeploy's CLI shape).

options (values are YAML: lists and dicts inline; --a.b value and --a.b=value both work):
  --model MODEL              nemotron-flash-demo (shipped, trained), a preset (tiny, ...), checkpoint dir or cached HF id
  --args.<field> VALUE       an LLM-args field, e.g. --args.max_seq_len 512, --args.kv_cache_config.max_tokens 4096
  --args.yaml-extra YAML     LLM-args YAML file (repeat to layer files)
  --prompt.batch_size N      prompts to run, the queries repeated as needed (default 2)
  --prompt.queries LIST      the prompts: a string or a YAML list of strings
  --prompt.sp_kwargs DICT    sampling parameters (default {max_tokens: 100, top_k: 200, temperature: 1.0})
  --benchmark.enabled BOOL   after the prompts, time --benchmark.num runs of --benchmark.bs prompts of
                             --benchmark.isl random tokens generating --benchmark.osl tokens each
  --dry_run                  print the merged LLM args and exit
  -h, --help                 show this help and exit
"""


class UsageError(Exception):
    """Bad command line or input: reported as one line."""


def _field(name: str) -> str:
    return name.replace("-", "_")


def parse_cli(argv: List[str]) -> Dict[str, Any]:
    """``--group.a.b value`` / ``--group.a.b=value`` / ``--flag`` -> nested dict (values parsed as YAML)."""
    parsed: Dict[str, Any] = {"args": {}, "prompt": {}, "benchmark": {}, "yaml_extra": []}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--"):
            raise UsageError(f"unexpected argument {token!r}: every option is --name value or --name=value")
        key, has_value, value = token[2:].partition("=")
        if not has_value:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            else:
                value = "true"
        i += 1
        path = [_field(p) for p in key.split(".")]
        if path in (["args", "yaml_extra"], ["yaml_extra"]):
            parsed["yaml_extra"].append(value)
            continue
        try:
            typed = yaml.safe_load(value)
        except yaml.YAMLError:
            typed = value
        if path[0] in ("model", "dry_run") and len(path) == 1:
            parsed[path[0]] = typed if path[0] == "dry_run" else value
        elif path[0] in ("args", "prompt", "benchmark") and len(path) > 1:
            node = parsed[path[0]]
            for part in path[1:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = typed
        else:
            raise UsageError(f"unknown option --{key}: use --model, --args.<field>, --prompt.<field>, --benchmark.<field> or --dry_run")
    for group, fields in (("prompt", PROMPT_FIELDS), ("benchmark", BENCHMARK_FIELDS)):
        unknown = sorted(set(parsed[group]) - set(fields))
        if unknown:
            raise UsageError(f"unknown option --{group}.{unknown[0]}; valid: {', '.join(f'--{group}.{f}' for f in fields)}")
        parsed[group] = {**fields, **parsed[group]}
    return parsed


def check_model(name: str) -> str:
    """A preset name or an existing checkpoint directory pass; a cached HF id becomes its snapshot dir."""
    if name in PRESETS or os.path.isdir(name):
        return name
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UsageError(f"--model {name}: no such directory")
    if "/" in name and not os.path.exists(name):
        cached = _hf_cache_dir(name)
        if cached:
            return cached
        raise UsageError(
            f"--model {name}: looks like a Hugging Face id, which is not in the local cache and cannot be downloaded "
            f"here; pass a local checkpoint directory or a preset ({', '.join(PRESETS)})"
        )
    raise UsageError(f"--model {name}: no such directory or preset; presets: {', '.join(PRESETS)}")


def _hf_cache_dir(repo_id: str) -> Optional[str]:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    path = try_to_load_from_cache(repo_id, "config.json")
    return os.path.dirname(path) if isinstance(path, str) else None


def _queries(prompt: Dict[str, Any]) -> List[str]:
    queries = prompt["queries"]
    queries = [queries] if isinstance(queries, str) else list(queries)
    if not queries or not all(isinstance(q, str) and q for q in queries):
        raise UsageError("--prompt.queries must be a non-empty string or a list of non-empty strings")
    batch_size = int(prompt["batch_size"])
    if batch_size < 1:
        raise UsageError(f"--prompt.batch_size must be >= 1, got {batch_size}")
    return (queries * ((batch_size + len(queries) - 1) // len(queries)))[:batch_size]


def _generate(llm: Any, queries: List[str], sp_kwargs: Dict[str, Any]) -> Tuple[List[Any], float]:
    from trtllm_flash.llm import SamplingParams

    if not isinstance(sp_kwargs, dict):
        raise UsageError(f"--prompt.sp_kwargs must be a dict such as '{{max_tokens: 32}}', got {sp_kwargs!r}")
    try:
        params = SamplingParams(**sp_kwargs)
    except TypeError as err:
        raise UsageError(f"--prompt.sp_kwargs: {err}") from None
    start = time.perf_counter()
    outputs = llm.generate(queries, params, use_tqdm=True)
    return outputs, time.perf_counter() - start


def _completion(output: Any) -> Tuple[str, int]:
    """The completion's text (or ``error: ...`` when the engine refused or failed it) and its tokens."""
    if output.error is not None or not output.outputs:
        return f"error: {output.error}", 0
    first = output.outputs[0]
    return first.text, len(first.token_ids)


def run(argv: List[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(HELP, end="")
        return 0
    cli = parse_cli(argv)
    overrides = dict(cli["args"])
    model = cli.get("model") or overrides.pop("model", None)
    if not model:
        raise UsageError("--model is required (nemotron-flash-demo, a preset such as tiny, a checkpoint directory or a cached HF id)")
    overrides["model"] = check_model(str(model))
    for path in cli["yaml_extra"]:
        if not os.path.isfile(path):
            raise UsageError(f"--args.yaml-extra {path}: no such file")
    from trtllm_flash.llm import LLM
    from trtllm_flash.llm_args import load_llm_args

    llm_args = load_llm_args(cli["yaml_extra"], overrides)
    if cli.get("dry_run"):
        print(llm_args)
        return 0
    print(f"[build] {overrides['model']}: load, export, transform, allocate the caches (a line per stage)", flush=True)
    start = time.perf_counter()
    llm = LLM(**llm_args.model_dump())
    print(f"[build] done in {time.perf_counter() - start:.2f}s")
    queries = _queries(cli["prompt"])
    outputs, seconds = _generate(llm, queries, cli["prompt"]["sp_kwargs"])
    total = 0
    for i, (query, output) in enumerate(zip(queries, outputs)):
        text, num_tokens = _completion(output)
        total += num_tokens
        print(f"[PROMPT {i}] {printable(query)}: {printable(text)}")
    print(f"[timing] {len(queries)} prompts, {total} tokens in {seconds:.2f}s ({total / max(seconds, 1e-9):.1f} tok/s)")
    failed = sum(output.error is not None for output in outputs)
    if failed:
        print(f"error: {failed} of {len(outputs)} prompts failed (see [PROMPT] lines)", file=sys.stderr)
        return 1
    if cli["benchmark"]["enabled"]:
        _benchmark(llm, cli["benchmark"])
    return 0


def _benchmark(llm: Any, bench: Dict[str, Any]) -> None:
    """``num`` rounds of ``bs`` random-token prompts of ``isl`` tokens generating ``osl`` tokens each."""
    import torch

    from trtllm_flash.llm import SamplingParams

    vocab = 1000
    params = SamplingParams(max_tokens=int(bench["osl"]), temperature=0.0)
    prompts = [torch.randint(10, vocab, (int(bench["isl"]),)).tolist() for _ in range(int(bench["bs"]))]
    times = []
    for _ in range(int(bench["num"])):
        start = time.perf_counter()
        llm.generate(prompts, params)
        times.append(time.perf_counter() - start)
    best = min(times)
    tokens = int(bench["bs"]) * int(bench["osl"])
    print(f"[benchmark] bs={bench['bs']} isl={bench['isl']} osl={bench['osl']}: best {best:.3f}s, {tokens / best:.1f} tok/s over {bench['num']} runs")


def main(argv: Optional[List[str]] = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, FileNotFoundError) as err:
        message = err.args[0] if err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
