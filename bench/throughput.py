"""Decode throughput at the largest batch that fits in GPU memory with 32k-token inputs.

How the batch size is found: the bytes one sequence needs (its KV pages for ``input + output`` tokens
in the full-attention layers, its sliding-window rings and its recurrent-state slot, read from the
built model's cache specs) divide the memory left after the weights and a reserve for activations;
the largest entry of the CUDA-graph batch sizes (upstream's nemotron_flash.yaml list) not above that
is taken.

How the 32k inputs are set up: decode cost depends on how many tokens each sequence has cached, not
on their values, and prefilling B × 32k tokens would spend minutes of the device budget; so every
sequence gets the pages of a 32k-token prefix, and the KV pages and recurrent states are filled with
random values. Two decode phases are timed, both through the built model (torch-cudagraph):

* ``tok_per_s``: the engine, as a user runs it — B requests of 32k random prompt tokens, taken in as
  if prefilled, then ``--steps`` engine steps (scheduler, page tables, GPU sampling, overlap
  scheduler): tokens reported ÷ wall time;
* ``graph_only_tok_per_s``: the model's ceiling — graph replays with device-side metadata advanced in
  place, greedy tokens read on the host each step.

    python -m bench.throughput [--presets ...] [--input-len 32768] [--steps 32]
"""
from __future__ import annotations

import argparse
import gc
import time

import torch

from bench.common import device_name, write_results

PAPER_TOK_S = {"nemotron-flash-1b": 7289, "nemotron-flash-3b": 2939, "nemotron-flash-3b-tp": 4657}
GRAPH_BATCH_SIZES = [1, 2, 4, 8, 16, 24, 32, 64, 96, 128, 256, 320, 384]
ACTIVATION_RESERVE_BYTES = 6 << 30


def bytes_per_sequence(cache_specs, page_size: int, seq_len: int) -> int:
    from trtllm_flash.ops.interface import StateCache, window_pages

    total = 0
    for spec in cache_specs.values():
        if isinstance(spec, StateCache):
            total += spec.bytes_per_slot()
        elif spec.sliding_window > 0:
            total += window_pages(spec.sliding_window, page_size) * spec.bytes_per_page(page_size)
        else:
            total += -(-seq_len // page_size) * spec.bytes_per_page(page_size)
    return total


def build(preset: str, batch: int, seq_len: int):
    from trtllm_flash.build import build_model
    from trtllm_flash.llm_args import LlmArgs

    args = LlmArgs(
        model=preset,
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


def graph_only_tok_s(built, cache, batch: int, input_len: int, steps: int) -> float:
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
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(3, 3 + steps):
        ids = step(i)
        ids.tolist()
    elapsed = time.perf_counter() - start
    for slot in slots:
        cache.free_pages(slot)
        cache.free_slot(slot)
    return batch * steps / elapsed


def engine_tok_s(args, built, batch: int, input_len: int, steps: int) -> float:
    """The real runtime: ``batch`` requests of ``input_len`` random prompt tokens in the engine (scheduler,
    page tables from the cache manager, GPU sampling, overlap scheduler), taken in as if their prompt
    were prefilled, then ``steps`` timed decode steps: tokens reported ÷ wall time."""
    from types import SimpleNamespace

    from trtllm_flash.runtime.engine import Engine
    from trtllm_flash.sampling_params import SamplingParams

    engine = Engine(built, SimpleNamespace(eos_token_id=None), args)
    randomize(engine.cache_manager.tensors)
    params = SamplingParams(max_tokens=steps + 8, temperature=0.0, ignore_eos=True)
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
    torch.cuda.synchronize()
    start, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += sum(len(d.new_token_ids) for d in engine.step())
    elapsed = time.perf_counter() - start
    while engine.has_unfinished_requests():
        engine.step()
    return tokens / elapsed


def run_preset(preset: str, input_len: int, steps: int) -> dict:
    from trtllm_flash.runtime.cache_manager import CacheManager

    seq_len = input_len + steps + 64
    # size with a batch-1 build (cache specs do not depend on the batch), then build for the batch
    args, built = build(preset, 1, seq_len)
    page_size = args.kv_cache_config.tokens_per_block
    per_seq = bytes_per_sequence(built.cache_specs, page_size, seq_len)
    free, _ = torch.cuda.mem_get_info()  # with the weights resident
    fits = int((free - ACTIVATION_RESERVE_BYTES) // per_seq)
    del built
    gc.collect()
    torch.cuda.empty_cache()
    batch = max([b for b in GRAPH_BATCH_SIZES if b <= fits] or [1])
    args, built = build(preset, batch, seq_len)
    cache = CacheManager(built.cache_specs, batch, seq_len, page_size, num_pages=batch * -(-seq_len // page_size) + 1, device="cuda")
    randomize(cache.tensors)
    ceiling = graph_only_tok_s(built, cache, batch, input_len, steps)
    del cache
    gc.collect()
    torch.cuda.empty_cache()
    tok_s = engine_tok_s(args, built, batch, input_len, steps)
    return {
        "preset": preset,
        "input_len": input_len,
        "batch": batch,
        "fits_by_memory": fits,
        "GB_per_seq": per_seq / 1e9,
        "step_ms": batch / tok_s * 1e3,
        "tok_per_s": tok_s,
        "graph_only_tok_per_s": ceiling,
        "paper_tok_per_s": PAPER_TOK_S.get(preset),
        "x_paper": tok_s / PAPER_TOK_S[preset] if preset in PAPER_TOK_S else None,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PAPER_TOK_S))
    parser.add_argument("--input-len", type=int, default=32768)
    parser.add_argument("--steps", type=int, default=32)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("bench.throughput needs a CUDA GPU")
    rows = []
    for preset in args.presets:
        rows.append(run_preset(preset, args.input_len, args.steps))
        gc.collect()  # the preset's model and caches go before the next one is built
        torch.cuda.empty_cache()
    write_results(
        "throughput",
        rows,
        ["preset", "input_len", "batch", "fits_by_memory", "GB_per_seq", "step_ms", "tok_per_s", "graph_only_tok_per_s", "paper_tok_per_s", "x_paper"],
        {"device": device_name(), "torch": torch.__version__, "steps": args.steps},
    )


if __name__ == "__main__":
    main()
