"""Batch-1 greedy decode of 8192 new tokens through the built model with CUDA graphs.

For each preset (random bf16 weights) the run reports, measured side by side on one GPU:
seconds per 8k tokens and ms/token of our engine (build -> LLM engine -> torch-cudagraph), the
weight-streaming floor (bytes of every weight read once per token ÷ the copy bandwidth measured here),
the eager reference model's cached generate (fewer tokens, labelled), and the paper's figure (measured
on an H100: on another GPU the ratio is a cross-GPU comparison and is labelled so). The 8k generation
is repeated ``--repeats`` times on one built engine; the table gives the median and the spread.

``--yaml examples/auto_deploy/nemotron_flash.yaml`` builds with that file's transforms and compile
settings (the bench still sets the batch, lengths and KV budget); without it the default pipeline runs.

    python -m bench.decode [--presets nemotron-flash-1b nemotron-flash-3b nemotron-flash-3b-tp] [--new-tokens 8192] [--repeats 3] [--yaml FILE]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Dict, List, Optional

import torch

from bench.common import copy_bandwidth_gbs, device_name, spread, write_results

#: Nemotron-Flash paper, Table 6 (H100, batch 1, 8k decode, CUDA graph): seconds per 8192 tokens
PAPER_SECONDS = {"nemotron-flash-1b": 14.45, "nemotron-flash-3b": 28.71, "nemotron-flash-3b-tp": 27.95}
PROMPT = "The quick brown fox jumps over the lazy dog."


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of weights a decode step reads: every parameter and buffer once (a tied table counts once);
    the embedding lookup reads one row, but the tied lm_head reads the whole table, so it stays in."""
    seen, total = set(), 0
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.data_ptr() in seen or not tensor.is_floating_point():
            continue
        seen.add(tensor.data_ptr())
        total += tensor.numel() * tensor.element_size()
    return total


def reference_ms_per_token(model, prompt_ids: torch.Tensor, tokens: int) -> float:
    """Eager reference: (time of generate(1 + tokens) - time of generate(1)) / tokens."""

    def timed(n: int) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(prompt_ids, max_new_tokens=n)
        torch.cuda.synchronize()
        return time.perf_counter() - start

    timed(2)
    return (timed(1 + tokens) - timed(1)) / tokens * 1e3


def bench_llm_args(preset: str, yaml_path: Optional[str], **settings):
    """LlmArgs of a bench build: ``yaml_path``'s keys (if given) under the bench's own ``settings``."""
    from trtllm_flash.llm_args import load_llm_args

    return load_llm_args([yaml_path] if yaml_path else [], model=preset, **settings)


def engine_decode(preset: str, prompt_ids: List[int], new_tokens: int, backend: str, repeats: int,
                  yaml_path: Optional[str] = None, decode_steps: Optional[int] = None, fp8: bool = False) -> Dict[str, object]:
    """Build the preset with ``backend`` (batch-1 graph) and time prefill and the decode steps (the
    engine's default overlap scheduler on), ``repeats`` times on the one engine."""
    from trtllm_flash.llm import LLM
    from trtllm_flash.sampling_params import SamplingParams

    settings = dict(
        dtype="bfloat16",
        compile_backend=backend,
        cuda_graph_batch_sizes=[1],
        max_batch_size=2,
        max_seq_len=len(prompt_ids) + new_tokens + 64,
        max_num_tokens=8192,
        kv_cache_config={"free_gpu_memory_fraction": 0.5},
    )
    if decode_steps is not None:
        settings["decode_steps_per_launch"] = decode_steps
    if fp8:
        settings["transforms"] = {"quantize_fp8_weights": {"enabled": True}}
    llm = LLM(args=bench_llm_args(preset, yaml_path, **settings))
    engine = llm.engine
    params = SamplingParams(max_tokens=new_tokens, temperature=0.0, ignore_eos=True)
    warm = SamplingParams(max_tokens=64, temperature=0.0, ignore_eos=True)
    engine.add_request("warmup", prompt_ids, warm)
    while engine.has_unfinished_requests():
        engine.step()
    prefill_ms, decode_s, outputs = [], [], []
    for run in range(repeats):
        engine.add_request(f"bench{run}", prompt_ids, params)
        torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = [t for d in engine.step() for t in d.new_token_ids]  # prefill + first token (later with overlap)
        torch.cuda.synchronize()
        prefill_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        while engine.has_unfinished_requests():
            tokens += [t for d in engine.step() for t in d.new_token_ids]
        torch.cuda.synchronize()
        decode_s.append(time.perf_counter() - start)
        if len(tokens) != new_tokens:
            raise RuntimeError(f"{preset}: the engine generated {len(tokens)} tokens, expected {new_tokens}")
        outputs.append(tokens)
    del llm, engine
    # the first token comes from the prefill step; the timed loop ran the other new_tokens - 1 forwards
    return {"prefill_ms": statistics.median(prefill_ms), "decode_s": decode_s, "decoded_tokens": new_tokens - 1,
            "same_tokens_every_run": all(o == outputs[0] for o in outputs)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PAPER_SECONDS))
    parser.add_argument("--new-tokens", type=int, default=8192)
    parser.add_argument("--reference-tokens", type=int, default=64, help="tokens timed for the eager reference")
    parser.add_argument("--backend", default="torch-cudagraph", choices=["torch-cudagraph", "torch-opt"], help="compile_backend of the engine")
    parser.add_argument("--repeats", type=int, default=3, help="timed 8k generations per preset (median and spread reported)")
    parser.add_argument("--yaml", default=None, help="build with this LlmArgs YAML's transforms (e.g. examples/auto_deploy/nemotron_flash.yaml)")
    parser.add_argument("--decode-steps", type=int, default=None, help="decode_steps_per_launch of the engine (default: the LlmArgs default)")
    parser.add_argument("--fp8", action="store_true", help="FP8 weights (transforms.quantize_fp8_weights); the floor stays the bf16 one")
    parser.add_argument("--name", default=None, help="result file name (default: decode[_<backend>][_yaml][_k<steps>])")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.decode needs a CUDA GPU")
    from trtllm_flash.loading import load_model, load_tokenizer

    bandwidth = copy_bandwidth_gbs()
    rows = []
    for preset in args.presets:
        reference = load_model(preset, dtype=torch.bfloat16, device="cuda")
        tokenizer = load_tokenizer(preset, reference.config)
        prompt_ids = list(tokenizer(PROMPT)["input_ids"])
        floor_ms = weight_bytes(reference) / (bandwidth * 1e9) * 1e3
        ref_ms = reference_ms_per_token(reference, torch.tensor([prompt_ids], device="cuda"), args.reference_tokens)
        del reference
        gc.collect()
        torch.cuda.empty_cache()
        run = engine_decode(preset, prompt_ids, args.new_tokens, args.backend, args.repeats, args.yaml, args.decode_steps, args.fp8)
        runs_ms = [seconds / run["decoded_tokens"] * 1e3 for seconds in run["decode_s"]]
        stats = spread(runs_ms)
        ms_per_token = stats["median"]
        seconds_8k = ms_per_token * 8192 / 1e3
        rows.append(
            {
                "preset": preset,
                "prompt_tokens": len(prompt_ids),
                "decoded_tokens": run["decoded_tokens"],
                "runs": len(runs_ms),
                "s_per_8k": seconds_8k,
                "ms_per_token": ms_per_token,
                "ms_per_token_runs": runs_ms,
                "spread_pct": stats["spread_pct"],
                "floor_ms_per_token": floor_ms,
                "x_floor": ms_per_token / floor_ms,
                "achieved_GBps": floor_ms / ms_per_token * bandwidth,
                "eager_ref_ms_per_token": ref_ms,
                "x_faster_than_eager": ref_ms / ms_per_token,
                "paper_H100_s_per_8k": PAPER_SECONDS.get(preset),
                "x_vs_paper_H100": (PAPER_SECONDS[preset] / seconds_8k) if preset in PAPER_SECONDS else None,
                "same_tokens_every_run": run["same_tokens_every_run"],
                "prefill_ms": run["prefill_ms"],
            }
        )
        gc.collect()
        torch.cuda.empty_cache()
    meta = {"device": device_name(), "copy_bandwidth_GBps": bandwidth, "reference_tokens": args.reference_tokens,
            "backend": args.backend, "yaml": args.yaml, "decode_steps_per_launch": args.decode_steps, "repeats": args.repeats,
            "fp8_weights": args.fp8, "floor_note": "floor = bf16 weight bytes / copy bandwidth (also for --fp8 runs)",
            "paper_note": "paper figures are the paper's H100 deployment; x_vs_paper_H100 on another GPU is a cross-GPU ratio"}
    name = args.name or "decode" + ("" if args.backend == "torch-cudagraph" else f"_{args.backend}") + ("_yaml" if args.yaml else "") + (
        f"_k{args.decode_steps}" if args.decode_steps else "") + ("_fp8" if args.fp8 else "")
    write_results(
        name,
        rows,
        ["preset", "s_per_8k", "ms_per_token", "spread_pct", "floor_ms_per_token", "x_floor", "achieved_GBps", "eager_ref_ms_per_token",
         "x_faster_than_eager", "paper_H100_s_per_8k", "x_vs_paper_H100"],
        meta,
    )


if __name__ == "__main__":
    main()
