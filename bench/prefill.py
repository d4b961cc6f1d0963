"""Prefill throughput (prompt tokens per second) for 8k and 32k-token prompts, batch 1.

The prompt runs through the engine exactly as a request would (chunked prefill, ``max_num_tokens``
8192 as in nemotron_flash.yaml, so a 32k prompt is four chunks) until its first token is sampled.
Beside it, the eager reference model's one-shot forward over the 8k prompt (the dense reference
attention cannot hold 32k × 32k scores).

    python -m bench.prefill [--presets ...] [--lengths 8192 32768]
"""
from __future__ import annotations

import argparse
import gc
import time

import torch

from bench.common import device_name, time_cuda, write_results

PRESETS = ["nemotron-flash-1b", "nemotron-flash-3b", "nemotron-flash-3b-tp"]


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


def run_preset(preset: str, lengths) -> list:
    from trtllm_flash.llm import LLM
    from trtllm_flash.loading import load_model

    rows = []
    reference = load_model(preset, dtype=torch.bfloat16, device="cuda")
    vocab = reference.config.vocab_size
    ref_ms = {}
    for length in lengths:
        if length <= 8192:
            ids = torch.randint(0, vocab, (1, length), device="cuda")
            with torch.no_grad():
                ref_ms[length] = time_cuda(lambda: reference(ids), warmup=1, iters=3)
    del reference
    gc.collect()
    torch.cuda.empty_cache()
    llm = LLM(
        preset,
        dtype="bfloat16",
        compile_backend="torch-cudagraph",
        cuda_graph_batch_sizes=[1],
        max_batch_size=2,
        max_seq_len=max(lengths) + 64,
        max_num_tokens=8192,
        kv_cache_config={"free_gpu_memory_fraction": 0.5},
    )
    engine_prefill_s(llm, torch.randint(0, vocab, (1024,)).tolist())  # warm-up: kernels compiled
    for length in lengths:
        seconds = engine_prefill_s(llm, torch.randint(0, vocab, (length,)).tolist())
        row = {"preset": preset, "prompt_tokens": length, "ms": seconds * 1e3, "tok_per_s": length / seconds}
        if length in ref_ms:
            row["eager_ref_ms"] = ref_ms[length]
            row["x_faster_than_eager"] = ref_ms[length] / (seconds * 1e3)
        rows.append(row)
    del llm
    gc.collect()
    torch.cuda.empty_cache()
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=PRESETS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[8192, 32768])
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.prefill needs a CUDA GPU")
    rows = [row for preset in args.presets for row in run_preset(preset, args.lengths)]
    write_results(
        "prefill",
        rows,
        ["preset", "prompt_tokens", "ms", "tok_per_s", "eager_ref_ms", "x_faster_than_eager"],
        {"device": device_name(), "torch": torch.__version__},
    )


if __name__ == "__main__":
    main()
