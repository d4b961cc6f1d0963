"""Decode throughput at the largest batch that fits in GPU memory with 32k-token inputs.

How the batch size is found: the bytes one sequence needs (its KV pages for ``input + output`` tokens
in the full-attention layers, its sliding-window rings and its recurrent-state slot, read from the
built model's cache specs) divide the memory left after the weights and a reserve for activations;
the largest entry of the CUDA-graph batch sizes (upstream's nemotron_flash.yaml list) not above that
is taken.

Two modes (``--mode``, default both):

* ``steady`` — the decode-only steady state at a 32k context. Decode cost depends on how many tokens
  each sequence has cached, not on their values, so every sequence gets the pages of a 32k-token prefix
  and the KV pages and recurrent states are filled with random values (no prefill is run). Two figures,
  both through the built model (torch-cudagraph), each timed ``--repeats`` times (median and spread):

  * ``tok_per_s``: the engine, as a user runs it — B requests of 32k random prompt tokens, taken in as
    if prefilled, then ``--steps`` engine steps (scheduler, page tables, GPU sampling, overlap
    scheduler); the GPU is synchronised before the clock stops, and the tokens counted are those of
    the ``--steps`` forwards launched in the timed window (batch × steps, all finished at the stop);
  * ``graph_only_tok_per_s``: the model's ceiling — graph replays with device-side metadata advanced
    in place, greedy tokens read on the host each step.

* ``e2e`` — end to end, like the paper's "max batch, 32k input": B requests of ``--input-len`` random
  tokens are really prefilled (chunked, ``max_num_tokens`` 8192) and each generates
  ``--output-len`` tokens; the figures are output tokens ÷ wall time and all tokens ÷ wall time, from
  the first step until the last request finished.

The paper's figures were measured on an H100; on another GPU ``x_paper_H100`` is a cross-GPU ratio.
``--yaml examples/auto_deploy/nemotron_flash.yaml`` builds with that file's transforms (its
``gather_logits_before_lm_head`` keeps a prefill chunk's logits to its last token).

    python -m bench.throughput [--presets ...] [--mode steady|e2e|both] [--input-len 32768] [--steps 256] [--repeats 3] [--output-len 64] [--yaml FILE]
"""
from __future__ import annotations

import argparse
import gc
import time
from types import SimpleNamespace

import torch

from bench.common import device_name, spread, write_results

PAPER_TOK_S = {"nemotron-flash-1b": 7289, "nemotron-flash-3b": 2939, "nemotron-flash-3b-tp": 4657}
GRAPH_BATCH_SIZES = [1, 2, 4, 8, 16, 24, 32, 64, 96, 128, 256, 320, 384]
ACTIVATION_RESERVE_BYTES = 6 << 30


def bytes_per_sequence(cache_specs, page_size: int, seq_len: int) -> int:
    """Cache bytes of one sequence of ``seq_len`` tokens (full-attention pages for all of them)."""
    from trtllm_flash.runtime.cache_manager import sequence_cache_bytes

    return sequence_cache_bytes(cache_specs, page_size, full_attention_pages=-(-seq_len // page_size))


def build(preset: str, batch: int, seq_len: int, yaml_path=None):
    from bench.decode import bench_llm_args
    from trtllm_flash.build import build_model

    args = bench_llm_args(
        preset, yaml_path,
        dtype="bfloat16",
        compile_backend="torch-cudagraph",
        cuda_graph_batch_sizes=[batch],
        max_batch_size=batch,
        max_seq_len=seq_len,
        enable_chunked_prefill=True,  # a 32k prompt is accepted (it is taken in as prefilled, never run)
        # sized for exactly `batch` sequences; its prompts are random ids without the memory tokens, so the
        # memory-token prefix (pinned pages none of them shares) is not computed
        kv_cache_config={"max_tokens": batch * seq_len, "reuse_memory_tokens": False},
    )
    return args, build_model(args.for_build(), progress=None)


def randomize(caches) -> None:
    """Random KV pages and recurrent states stand in for a prefilled 32k prefix (see the module doc)."""
    for tensor in caches.values():
        tensor.normal_(0, 0.5)


def graph_only_tok_s(built, cache, batch: int, input_len: int, steps: int, repeats: int) -> list:
    """The model's ceiling: graph replays on device-side metadata advanced in place (every page allocated
    up front), greedy tokens read on the host each step; no scheduler, no per-step host metadata."""
    from trtllm_flash.ops.metadata import build_metadata

    slots = [cache.allocate_slot() for _ in range(batch)]
    for slot in slots:
        cache.ensure_pages(slot, cache.max_seq_len)
    meta = build_metadata([1] * batch, [input_len] * batch, slots, cache.page_table(slots), device="cuda")
    positions = torch.full((batch,), input_len, dtype=torch.int64, device="cuda")
    ids = torch.randint(0, built.config.vocab_size, (batch,), device="cuda")
    gather = torch.arange(batch, device="cuda")

    def step(i: int) -> torch.Tensor:
        meta.input_pos.fill_(input_len + i)
        positions.fill_(input_len + i)
        return built.forward(ids, positions, meta, cache.tensors, gather).argmax(-1)

    for i in range(3):
        ids = step(i)
    runs, done = [], 3
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(done, done + steps):
            ids = step(i)
            ids.tolist()  # waits for the step
        runs.append(batch * steps / (time.perf_counter() - start))
        done += steps
    for slot in slots:
        cache.free_pages(slot)
        cache.free_slot(slot)
    return runs


def engine_tok_s(args, built, batch: int, input_len: int, steps: int, repeats: int) -> list:
    """The real runtime: ``batch`` requests of ``input_len`` random prompt tokens in the engine (scheduler,
    page tables from the cache manager, GPU sampling, overlap scheduler), taken in as if their prompt
    were prefilled, then ``repeats`` windows of ``steps`` timed decode steps. Each window starts and
    ends with the GPU synchronised, so it holds exactly ``steps`` launched and finished forwards of
    ``batch`` tokens each: tokens/s = batch × steps ÷ wall time."""
    from trtllm_flash.runtime.engine import Engine
    from trtllm_flash.sampling_params import SamplingParams

    engine = Engine(built, SimpleNamespace(eos_token_id=None), args)
    randomize(engine.cache_manager.tensors)
    params = SamplingParams(max_tokens=repeats * steps + 8, temperature=0.0, ignore_eos=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(batch):
        prompt = torch.randint(0, built.config.vocab_size, (input_len,), generator=generator).tolist()
        engine.add_request(f"r{i}", prompt, params)
    scheduler = engine.scheduler
    while scheduler.waiting:  # admit with slot + pages for the prompt; all but its last token "computed"
        seq = scheduler.waiting[0]
        if not scheduler._admit(seq, len(seq.token_ids)):
            raise RuntimeError(f"the engine's cache could not take request {seq.request_id} of {batch}")
        seq.num_computed = len(seq.token_ids) - 1
    for _ in range(3):
        engine.step()
    runs = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start, reported = time.perf_counter(), 0
        for _ in range(steps):
            reported += sum(len(d.new_token_ids) for d in engine.step())
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if reported != batch * steps:  # with overlap: the first step reports the forward launched before the window
            raise RuntimeError(f"{steps} steps reported {reported} tokens, expected {batch * steps} (a request finished early?)")
        runs.append(batch * steps / elapsed)
    while engine.has_unfinished_requests():
        engine.step()
    return runs


def e2e_tok_s(args, built, batch: int, input_len: int, output_len: int) -> dict:
    """``batch`` requests of ``input_len`` random tokens, really prefilled, ``output_len`` tokens each,
    run to completion through the engine: wall time from the first step to the last token."""
    from trtllm_flash.runtime.engine import Engine
    from trtllm_flash.sampling_params import SamplingParams

    engine = Engine(built, SimpleNamespace(eos_token_id=None), args)
    params = SamplingParams(max_tokens=output_len, temperature=0.0, ignore_eos=True)
    generator = torch.Generator().manual_seed(0)
    # warm-up: one short request compiles the prefill and decode shapes (a full chunk and a remainder)
    engine.add_request("warm", torch.randint(0, built.config.vocab_size, (args.max_num_tokens + 100,), generator=generator).tolist(), params)
    while engine.has_unfinished_requests():
        engine.step()
    for i in range(batch):
        engine.add_request(f"r{i}", torch.randint(0, built.config.vocab_size, (input_len,), generator=generator).tolist(), params)
    torch.cuda.synchronize()
    start, outputs, steps, first_token_at = time.perf_counter(), 0, 0, {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs += len(delta.new_token_ids)
            if delta.new_token_ids and delta.request_id not in first_token_at:
                first_token_at[delta.request_id] = time.perf_counter() - start
        steps += 1
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if outputs != batch * output_len:
        raise RuntimeError(f"e2e: {outputs} output tokens, expected {batch * output_len}")
    last_prefill = max(first_token_at.values())
    return {"e2e_s": elapsed, "e2e_steps": steps, "e2e_output_tok_per_s": outputs / elapsed,
            "e2e_total_tok_per_s": batch * (input_len + output_len) / elapsed,
            "e2e_prefill_tok_per_s": batch * input_len / last_prefill, "e2e_last_first_token_s": last_prefill}


def max_batch(preset: str, seq_len: int, yaml_path) -> tuple:
    """``(batch, fits_by_memory, bytes per sequence)``: the largest CUDA-graph size whose caches fit."""
    # size with a batch-1 build (cache specs do not depend on the batch)
    args, built = build(preset, 1, seq_len, yaml_path)
    page_size = args.kv_cache_config.tokens_per_block
    per_seq = bytes_per_sequence(built.cache_specs, page_size, seq_len)
    free, _ = torch.cuda.mem_get_info()  # with the weights resident
    fits = int((free - ACTIVATION_RESERVE_BYTES) // per_seq)
    del built
    gc.collect()
    torch.cuda.empty_cache()
    return max([b for b in GRAPH_BATCH_SIZES if b <= fits] or [1]), fits, per_seq


def run_steady(preset: str, input_len: int, steps: int, repeats: int, yaml_path) -> dict:
    from trtllm_flash.runtime.cache_manager import CacheManager

    seq_len = input_len + repeats * steps + 64
    batch, fits, per_seq = max_batch(preset, seq_len, yaml_path)
    args, built = build(preset, batch, seq_len, yaml_path)
    page_size = args.kv_cache_config.tokens_per_block
    cache = CacheManager(built.cache_specs, batch, seq_len, page_size, num_pages=batch * -(-seq_len // page_size) + 1, device="cuda")
    randomize(cache.tensors)
    ceiling = spread(graph_only_tok_s(built, cache, batch, input_len, steps, repeats))
    del cache
    gc.collect()
    torch.cuda.empty_cache()
    engine_runs = engine_tok_s(args, built, batch, input_len, steps, repeats)
    engine = spread(engine_runs)
    tok_s = engine["median"]
    return {
        "preset": preset,
        "mode": "decode-only steady state (random caches)",
        "input_len": input_len,
        "batch": batch,
        "fits_by_memory": fits,
        "GB_per_seq": per_seq / 1e9,
        "steps": steps,
        "runs": repeats,
        "step_ms": batch / tok_s * 1e3,
        "tok_per_s": tok_s,
        "tok_per_s_runs": engine_runs,
        "spread_pct": engine["spread_pct"],
        "graph_only_tok_per_s": ceiling["median"],
        "graph_only_spread_pct": ceiling["spread_pct"],
        "paper_H100_tok_per_s": PAPER_TOK_S.get(preset),
        "x_paper_H100": tok_s / PAPER_TOK_S[preset] if preset in PAPER_TOK_S else None,
    }


def run_e2e(preset: str, input_len: int, output_len: int, yaml_path) -> dict:
    seq_len = input_len + output_len + 64
    batch, fits, per_seq = max_batch(preset, seq_len, yaml_path)
    args, built = build(preset, batch, seq_len, yaml_path)
    result = e2e_tok_s(args, built, batch, input_len, output_len)
    return {"preset": preset, "mode": "end to end (real prefill)", "input_len": input_len, "output_len": output_len, "batch": batch,
            "fits_by_memory": fits, **result, "paper_H100_tok_per_s": PAPER_TOK_S.get(preset),
            "x_paper_H100": result["e2e_output_tok_per_s"] / PAPER_TOK_S[preset] if preset in PAPER_TOK_S else None}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PAPER_TOK_S))
    parser.add_argument("--mode", default="both", choices=["steady", "e2e", "both"])
    parser.add_argument("--input-len", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=256, help="decode steps per timed window (steady)")
    parser.add_argument("--repeats", type=int, default=3, help="timed windows (steady; median and spread reported)")
    parser.add_argument("--output-len", type=int, default=64, help="tokens generated per request (e2e)")
    parser.add_argument("--e2e-presets", nargs="+", default=None, help="presets run end to end (default: --presets)")
    parser.add_argument("--yaml", default=None, help="build with this LlmArgs YAML's transforms (e.g. examples/auto_deploy/nemotron_flash.yaml)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.throughput needs a CUDA GPU")
    meta = {"device": device_name(), "input_len": args.input_len, "yaml": args.yaml,
            "paper_note": "paper figures are the paper's H100 deployment; x_paper_H100 on another GPU is a cross-GPU ratio"}
    suffix = "_yaml" if args.yaml else ""
    if args.mode in ("steady", "both"):
        rows = []
        for preset in args.presets:
            rows.append(run_steady(preset, args.input_len, args.steps, args.repeats, args.yaml))
            gc.collect()  # the preset's model and caches go before the next one is built
            torch.cuda.empty_cache()
        write_results(
            "throughput" + suffix,
            rows,
            ["preset", "batch", "fits_by_memory", "GB_per_seq", "step_ms", "tok_per_s", "spread_pct", "graph_only_tok_per_s", "paper_H100_tok_per_s", "x_paper_H100"],
            {**meta, "steps": args.steps, "repeats": args.repeats},
        )
    if args.mode in ("e2e", "both"):
        rows = []
        for preset in args.e2e_presets or args.presets:
            rows.append(run_e2e(preset, args.input_len, args.output_len, args.yaml))
            gc.collect()
            torch.cuda.empty_cache()
        write_results(
            "throughput_e2e" + suffix,
            rows,
            ["preset", "batch", "output_len", "e2e_s", "e2e_output_tok_per_s", "e2e_total_tok_per_s", "e2e_prefill_tok_per_s", "paper_H100_tok_per_s", "x_paper_H100"],
            {**meta, "output_len": args.output_len},
        )


if __name__ == "__main__":
    main()
