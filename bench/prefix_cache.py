"""Prefix caching: prefilled tokens and time to first token with reuse off vs on, in one run.

Two workloads over random token ids (every prompt starts with the memory tokens, as the tokenizer
makes it):

* ``multi_turn``: ``--conversations`` chats of ``--turns`` turns; turn ``k`` sends the whole history
  (previous prompts and answers) plus ``--user-tokens`` new tokens and generates ``--output-tokens``;
  the conversations' turns run side by side.
* ``shared_system``: ``--requests`` prompts of a ``--system-tokens`` system prompt plus
  ``--question-tokens`` of their own, arriving ``--concurrency`` at a time.

Each workload runs on three engines over one built model: ``off`` (nothing reused: the memory tokens
are prefilled by every request), ``memory`` (the default: the memory-token prefix only) and ``on``
(``kv_cache_config.enable_block_reuse``). Reported per mode: prompt tokens prefilled, tokens reused,
mean / p50 TTFT (request added -> first token back, the engine stepped in a loop), wall time, and the
ratios against ``off``. Greedy outputs of every mode are checked to be identical (``same_tokens``).

Also prints the snapshot memory per sequence (one prefix-cache snapshot: recurrent states, conv
tails, window rings, one partial page per full-attention layer) for the preset shapes, computed from
their configs (:func:`config_cache_specs` mirrors the op descriptors; tests check it against a built
tiny model).

    python -m bench.prefix_cache                      # CPU, tiny preset
    python -m bench.prefix_cache --preset nemotron-flash-1b --dtype bfloat16 --device cuda \\
        --system-tokens 2048 --user-tokens 256 --output-tokens 64
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from typing import Dict, List

import torch

from bench.common import device_name, write_results

MODES = {
    "off": {"reuse_memory_tokens": False, "enable_block_reuse": False},
    "memory": {"reuse_memory_tokens": True, "enable_block_reuse": False},
    "on": {"reuse_memory_tokens": True, "enable_block_reuse": True},
}
SNAPSHOT_PRESETS = ["nemotron-flash-1b", "nemotron-flash-3b", "nemotron-flash-3b-tp"]


def config_cache_specs(config, dtype: torch.dtype) -> Dict[str, object]:
    """The cache specs a built model of ``config`` declares (one per cached op), from its sizes alone."""
    from trtllm_flash.ops.interface import PagedKVCache, StateCache

    specs: Dict[str, object] = {}
    conv_tail = config.mamba_d_conv - 1
    for i, kind in enumerate(config.layer_types):
        if kind == "a":
            window = config.layer_window(i)
            specs[f"{i}.kv"] = PagedKVCache(config.num_key_value_heads, config.head_dim, dtype, window)
        elif kind in ("m", "m2"):
            specs[f"{i}.conv"] = StateCache((config.mamba_conv_dim, conv_tail), dtype, "conv")
            specs[f"{i}.ssm"] = StateCache((config.mamba_num_heads, config.mamba2_headdim, config.mamba_d_state), torch.float32, "ssm")
        elif kind == "deltanet":
            d = config.deltanet_head_dim
            # q, k and v's short convs (kernel 4) run as one conv over the concatenated channels
            specs[f"{i}.qkv_conv"] = StateCache((3 * config.hidden_size, 3), dtype, "conv")
            specs[f"{i}.delta"] = StateCache((config.num_attention_heads, d, d), torch.float32, "state")
    return specs


def snapshot_rows(page_size: int, dtype: torch.dtype) -> List[dict]:
    from trtllm_flash.config import NemotronFlashConfig
    from trtllm_flash.runtime.cache_manager import snapshot_bytes

    rows = []
    for preset in SNAPSHOT_PRESETS:
        specs = config_cache_specs(NemotronFlashConfig.from_preset(preset), dtype)
        rows.append({"preset": preset, "page_size": page_size,
                     "snapshot_MiB": snapshot_bytes(specs, page_size, with_tail=False) / 2**20,
                     "mid_page_snapshot_MiB": snapshot_bytes(specs, page_size) / 2**20})
    return rows


def _ids(rng: random.Random, vocab: int, n: int) -> List[int]:
    return [rng.randrange(3, vocab) for _ in range(n)]


def run_workload(engine, waves, max_tokens: int, vocab: int) -> dict:
    """Run ``waves`` (lists of ``(request_id, prompt_fn)``; a wave starts when the previous one ended;
    ``prompt_fn(outputs)`` builds a prompt from the finished outputs) and time every request."""
    from trtllm_flash.sampling_params import SamplingParams

    params = SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True)
    outputs: Dict[str, List[int]] = {}
    ttft: List[float] = []
    start = time.perf_counter()
    for wave in waves:
        added = {}
        for rid, prompt_fn in wave:
            engine.add_request(rid, prompt_fn(outputs), params)
            added[rid] = time.perf_counter()
            outputs[rid] = []
        while engine.has_unfinished_requests():
            for delta in engine.step():
                if delta.error:
                    raise RuntimeError(f"{delta.request_id}: {delta.error}")
                if delta.new_token_ids and not outputs[delta.request_id]:
                    ttft.append(time.perf_counter() - added[delta.request_id])
                outputs[delta.request_id].extend(delta.new_token_ids)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    stats = engine.stats
    return {"outputs": outputs, "wall_s": time.perf_counter() - start, "ttft_ms": [t * 1e3 for t in ttft],
            "prefilled": stats["num_prefilled_tokens"], "reused": stats["num_reused_tokens"]}


def multi_turn(args, memory: List[int], vocab: int):
    rng = random.Random(args.seed)
    users = {(c, t): _ids(rng, vocab, args.user_tokens) for c in range(args.conversations) for t in range(args.turns)}

    def prompt(c: int, t: int):
        def build(outputs):
            history = list(memory)
            for k in range(t):
                history += users[(c, k)] + outputs[f"c{c}t{k}"]
            return history + users[(c, t)]
        return build

    return [[(f"c{c}t{t}", prompt(c, t)) for c in range(args.conversations)] for t in range(args.turns)]


def shared_system(args, memory: List[int], vocab: int):
    rng = random.Random(args.seed + 1)
    system = _ids(rng, vocab, args.system_tokens)
    prompts = [memory + system + _ids(rng, vocab, args.question_tokens) for _ in range(args.requests)]
    requests = [(f"q{i}", lambda outputs, p=p: p) for i, p in enumerate(prompts)]
    return [requests[i : i + args.concurrency] for i in range(0, len(requests), args.concurrency)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--page-size", type=int, default=32)
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--user-tokens", type=int, default=48)
    parser.add_argument("--output-tokens", type=int, default=16)
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--system-tokens", type=int, default=384)
    parser.add_argument("--question-tokens", type=int, default=24)
    parser.add_argument("--max-num-tokens", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from trtllm_flash.build import build_model
    from trtllm_flash.llm_args import load_llm_args
    from trtllm_flash.runtime.engine import Engine

    history_len = args.turns * (args.user_tokens + args.output_tokens)
    max_seq_len = 512 + max(history_len, args.system_tokens + args.question_tokens + args.output_tokens)
    base = {"model": args.preset, "dtype": args.dtype, "device": args.device, "max_seq_len": max_seq_len,
            "max_batch_size": max(args.conversations, args.concurrency), "max_num_tokens": args.max_num_tokens,
            "enable_chunked_prefill": True}
    build_args = load_llm_args([], base)
    built = build_model(build_args.for_build(), progress=None)
    config = built.config
    memory = list(range(config.vocab_size, config.vocab_size + config.num_memory_tokens))
    tokenizer = type("NoTokenizer", (), {"eos_token_id": None})()
    workloads = {"multi_turn": multi_turn(args, memory, config.vocab_size),
                 "shared_system": shared_system(args, memory, config.vocab_size)}
    rows = []
    for workload, waves in workloads.items():
        results = {}
        for mode, kv in MODES.items():
            kv_config = {"tokens_per_block": args.page_size, "free_gpu_memory_fraction": 0.5, **kv}
            if args.device == "cpu":
                kv_config["max_tokens"] = 2 * max_seq_len * base["max_batch_size"]
            engine = Engine(built, tokenizer, load_llm_args([], base, kv_cache_config=kv_config))
            run_workload(engine, waves[:1], 1, config.vocab_size)  # warm-up (kernels, allocator), not counted
            del engine
            gc.collect()
            engine = Engine(built, tokenizer, load_llm_args([], base, kv_cache_config=kv_config))
            results[mode] = run_workload(engine, waves, args.output_tokens, config.vocab_size)
            del engine
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        off = results["off"]
        for mode, r in results.items():
            rows.append({
                "workload": workload, "mode": mode, "prefilled_tokens": r["prefilled"], "reused_tokens": r["reused"],
                "ttft_mean_ms": statistics.mean(r["ttft_ms"]), "ttft_p50_ms": statistics.median(r["ttft_ms"]),
                "wall_s": r["wall_s"],
                "prefilled_ratio": r["prefilled"] / off["prefilled"],
                "ttft_ratio": statistics.mean(r["ttft_ms"]) / statistics.mean(off["ttft_ms"]),
                "same_tokens": r["outputs"] == off["outputs"],
            })
    meta = {"device": device_name(), "torch": torch.__version__, **vars(args)}
    write_results(f"prefix_cache_{args.preset}", rows,
                  ["workload", "mode", "prefilled_tokens", "reused_tokens", "ttft_mean_ms", "ttft_p50_ms", "wall_s",
                   "prefilled_ratio", "ttft_ratio", "same_tokens"], meta)
    write_results("prefix_cache_snapshot_memory", snapshot_rows(args.page_size, torch.bfloat16),
                  ["preset", "page_size", "snapshot_MiB", "mid_page_snapshot_MiB"],
                  {"device": "computed from the preset configs, bf16 model dtype (recurrent states fp32)"})


if __name__ == "__main__":
    main()
