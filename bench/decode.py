"""Batch-1 greedy decode of 8192 new tokens through the built model with CUDA graphs.

For each preset (random bf16 weights) the run reports, measured side by side on one GPU:
seconds per 8k tokens and ms/token of our engine (build -> LLM engine -> torch-cudagraph), the
weight-streaming floor (bytes of every weight read once per token ÷ the copy bandwidth measured here),
the eager reference model's cached generate (fewer tokens, labelled), and the paper's figure.

    python -m bench.decode [--presets nemotron-flash-1b nemotron-flash-3b nemotron-flash-3b-tp] [--new-tokens 8192]
"""
from __future__ import annotations

import argparse
import gc
import time
from typing import Dict, List

import torch

from bench.common import copy_bandwidth_gbs, device_name, write_results

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


def engine_decode(preset: str, prompt_ids: List[int], new_tokens: int, backend: str) -> Dict[str, float]:
    """Build the preset with ``backend`` (batch-1 graph) and time prefill and the decode steps (the
    engine's default overlap scheduler on)."""
    from trtllm_flash.llm import LLM
    from trtllm_flash.sampling_params import SamplingParams

    llm = LLM(
        preset,
        dtype="bfloat16",
        compile_backend=backend,
        cuda_graph_batch_sizes=[1],
        max_batch_size=2,
        max_seq_len=len(prompt_ids) + new_tokens + 64,
        max_num_tokens=8192,
        kv_cache_config={"free_gpu_memory_fraction": 0.5},
    )
    engine = llm.engine
    params = SamplingParams(max_tokens=new_tokens, temperature=0.0, ignore_eos=True)
    warm = SamplingParams(max_tokens=64, temperature=0.0, ignore_eos=True)
    engine.add_request("warmup", prompt_ids, warm)
    while engine.has_unfinished_requests():
        engine.step()
    engine.add_request("bench", prompt_ids, params)
    torch.cuda.synchronize()
    start = time.perf_counter()
    generated = sum(len(d.new_token_ids) for d in engine.step())  # prefill + first token
    torch.cuda.synchronize()
    prefill_s = time.perf_counter() - start
    start = time.perf_counter()
    while engine.has_unfinished_requests():
        generated += sum(len(d.new_token_ids) for d in engine.step())
    torch.cuda.synchronize()
    decode_s = time.perf_counter() - start
    if generated != new_tokens:
        raise RuntimeError(f"{preset}: the engine generated {generated} tokens, expected {new_tokens}")
    del llm, engine
    # the first token comes from the prefill step; the timed loop ran the other new_tokens - 1 forwards
    return {"prefill_ms": prefill_s * 1e3, "decode_s": decode_s, "decoded_tokens": new_tokens - 1}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PAPER_SECONDS))
    parser.add_argument("--new-tokens", type=int, default=8192)
    parser.add_argument("--reference-tokens", type=int, default=64, help="tokens timed for the eager reference")
    parser.add_argument("--backend", default="torch-cudagraph", choices=["torch-cudagraph", "torch-opt"], help="compile_backend of the engine")
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
        run = engine_decode(preset, prompt_ids, args.new_tokens, args.backend)
        ms_per_token = run["decode_s"] / run["decoded_tokens"] * 1e3
        seconds_8k = ms_per_token * 8192 / 1e3
        rows.append(
            {
                "preset": preset,
                "prompt_tokens": len(prompt_ids),
                "decoded_tokens": run["decoded_tokens"],
                "s_per_8k": seconds_8k,
                "ms_per_token": ms_per_token,
                "floor_ms_per_token": floor_ms,
                "x_floor": ms_per_token / floor_ms,
                "achieved_GBps": floor_ms / ms_per_token * bandwidth,
                "eager_ref_ms_per_token": ref_ms,
                "x_faster_than_eager": ref_ms / ms_per_token,
                "paper_s_per_8k": PAPER_SECONDS.get(preset),
                "x_faster_than_paper": (PAPER_SECONDS[preset] / seconds_8k) if preset in PAPER_SECONDS else None,
                "prefill_ms": run["prefill_ms"],
            }
        )
        gc.collect()
        torch.cuda.empty_cache()
    meta = {"device": device_name(), "copy_bandwidth_GBps": bandwidth, "reference_tokens": args.reference_tokens,
            "backend": args.backend, "torch": torch.__version__}
    write_results(
        "decode" if args.backend == "torch-cudagraph" else f"decode_{args.backend}",
        rows,
        ["preset", "s_per_8k", "ms_per_token", "floor_ms_per_token", "x_floor", "achieved_GBps", "eager_ref_ms_per_token", "x_faster_than_eager", "paper_s_per_8k", "x_faster_than_paper"],
        meta,
    )


if __name__ == "__main__":
    main()
