"""Prefill throughput (prompt tokens per second) for 8k and 32k-token prompts, batch 1.

The prompt runs through the engine exactly as a request would (chunked prefill, ``max_num_tokens``
8192 as in nemotron_flash.yaml, so a 32k prompt is four chunks) until its first token is sampled.
Beside it, the eager reference model's one-shot forward over a shorter prompt (``--reference-tokens``,
default 2048: its DeltaNet and Mamba2 run token by token and its dense attention cannot hold 32k × 32k
scores), reported as tokens/s for comparison.

Each length is timed ``--repeats`` times (median and spread reported). ``--yaml
examples/auto_deploy/nemotron_flash.yaml`` builds with that file's transforms (its
``gather_logits_before_lm_head`` computes logits for a chunk's last token only, where the default
pipeline computes fp32 logits for all 8,192 tokens of a chunk and gathers afterwards).

    python -m bench.prefill [--presets ...] [--lengths 8192 32768] [--repeats 2] [--yaml FILE]
"""
from __future__ import annotations

import argparse
import gc
import time

import torch

from bench.common import device_name, spread, time_cuda, write_results

PRESETS = ["nemotron-flash-1b", "nemotron-flash-3b", "nemotron-flash-3b-tp"]
#: the README's earlier figures (H100 80GB HBM3, session 3, default pipeline): the goal is at least these
H100_SESSION3_TOK_S = {("nemotron-flash-1b", 8192): 133700, ("nemotron-flash-1b", 32768): 127200, ("nemotron-flash-3b", 8192): 67790,
                       ("nemotron-flash-3b", 32768): 60960, ("nemotron-flash-3b-tp", 8192): 69230, ("nemotron-flash-3b-tp", 32768): 63970}


def engine_prefill_s(llm, prompt_ids) -> float:
    from trtllm_flash.sampling_params import SamplingParams

    engine = llm.engine
    engine.add_request("prefill", prompt_ids, SamplingParams(max_tokens=1, temperature=0.0, ignore_eos=True))
    torch.cuda.synchronize()
    start = time.perf_counter()
    while engine.has_unfinished_requests():
        engine.step()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def reference_tok_per_s(preset: str, tokens: int):
    """``(vocab_size, tokens/s)`` of the eager reference model's forward over a ``tokens``-token prompt."""
    from trtllm_flash.loading import load_model

    reference = load_model(preset, dtype=torch.bfloat16, device="cuda")
    ids = torch.randint(0, reference.config.vocab_size, (1, tokens), device="cuda")
    with torch.no_grad():
        ms = time_cuda(lambda: reference(ids), warmup=1, iters=3)
    return reference.config.vocab_size, tokens / (ms * 1e-3)


def run_preset(preset: str, lengths, reference_tokens: int, repeats: int, yaml_path) -> list:
    from bench.decode import bench_llm_args
    from trtllm_flash.llm import LLM

    vocab, ref_tok_s = reference_tok_per_s(preset, reference_tokens)
    gc.collect()
    torch.cuda.empty_cache()
    rows = []
    llm = LLM(args=bench_llm_args(
        preset, yaml_path,
        dtype="bfloat16",
        compile_backend="torch-cudagraph",
        cuda_graph_batch_sizes=[1],
        max_batch_size=2,
        max_seq_len=max(lengths) + 64,
        max_num_tokens=8192,
        enable_chunked_prefill=True,
        kv_cache_config={"free_gpu_memory_fraction": 0.5},
    ))
    # warm-up: a full 8192-token chunk and a short one, so every kernel shape the timed prompts run is compiled
    engine_prefill_s(llm, torch.randint(0, vocab, (8192 + 1024,)).tolist())
    for length in lengths:
        runs = [engine_prefill_s(llm, torch.randint(0, vocab, (length,)).tolist()) * 1e3 for _ in range(repeats)]
        stats = spread(runs)
        tok_s = length / (stats["median"] * 1e-3)
        rows.append({"preset": preset, "prompt_tokens": length, "ms": stats["median"], "ms_runs": runs, "spread_pct": stats["spread_pct"],
                     "tok_per_s": tok_s, "eager_ref_tok_per_s": ref_tok_s, "x_faster_than_eager": tok_s / ref_tok_s,
                     "H100_session3_tok_per_s": H100_SESSION3_TOK_S.get((preset, length))})
    del llm
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[8192, 32768])
    parser.add_argument("--reference-tokens", type=int, default=2048, help="prompt length of the eager reference's forward")
    parser.add_argument("--repeats", type=int, default=2, help="timed prompts per length (median and spread reported)")
    parser.add_argument("--yaml", default=None, help="build with this LlmArgs YAML's transforms (e.g. examples/auto_deploy/nemotron_flash.yaml)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.prefill needs a CUDA GPU")
    rows = [row for preset in args.presets for row in run_preset(preset, args.lengths, args.reference_tokens, args.repeats, args.yaml)]
    write_results(
        "prefill_yaml" if args.yaml else "prefill",
        rows,
        ["preset", "prompt_tokens", "ms", "spread_pct", "tok_per_s", "H100_session3_tok_per_s", "eager_ref_tok_per_s", "x_faster_than_eager"],
        {"device": device_name(), "reference_tokens": args.reference_tokens, "yaml": args.yaml, "repeats": args.repeats},
    )


if __name__ == "__main__":
    main()
