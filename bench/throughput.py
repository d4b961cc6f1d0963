"""Decode throughput at the largest batch that fits in GPU memory with 32k-token inputs.

How the batch size is found: the bytes one sequence needs (its KV pages for ``input + output`` tokens
in the full-attention layers, its sliding-window rings and its recurrent-state slot, read from the
built model's cache specs) divide the memory left after the weights and a reserve for activations;
the largest entry of the CUDA-graph batch sizes (upstream's nemotron_flash.yaml list) not above that
is taken.

How the 32k inputs are set up: decode cost depends on how many tokens each sequence has cached, not
on their values, and prefilling B × 32k tokens would spend minutes of the device budget; so every
sequence gets the pages of a 32k-token prefix, and the KV pages and recurrent states are filled with
random values. The decode phase then runs through the built model (torch-cudagraph, graphs replayed)
with device-side metadata advanced in place each step and greedy sampling on the GPU (tokens read on
the host every step, as the engine does): throughput = batch × steps ÷ wall time of those steps.

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
    )
    return args, build_model(args.for_build(), progress=None)


def run_preset(preset: str, input_len: int, steps: int) -> dict:
    from trtllm_flash.ops.metadata import build_metadata
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
    pages_per_seq = -(-seq_len // page_size)
    cache = CacheManager(built.cache_specs, batch, seq_len, page_size, num_pages=batch * pages_per_seq + 1, device="cuda")
    for tensor in cache.tensors.values():
        tensor.normal_(0, 0.5)
    slots = [cache.allocate_slot() for _ in range(batch)]
    for slot in slots:
        cache.ensure_pages(slot, seq_len)
    rows = [cache.page_table_row(slot) for slot in slots]
    vocab = built.config.vocab_size
    ids = torch.randint(0, vocab, (batch,), device="cuda")
    gather = torch.arange(batch, device="cuda")

    # decode-only metadata that only moves forward in position: built once, advanced in place each step
    # (the pages of the whole sequence are allocated up front). The engine today rebuilds the page table
    # from Python lists every step (~11 ms at 384 x 1027 pages on a 2-core CPU): see the closing notes.
    meta = build_metadata([1] * batch, [input_len] * batch, slots, rows, device="cuda")
    positions = torch.full((batch,), input_len, dtype=torch.int64, device="cuda")

    def step(i: int) -> torch.Tensor:
        meta.input_pos.fill_(input_len + i)
        positions.fill_(input_len + i)
        logits = built.forward(ids, positions, meta, cache.tensors, gather)
        return logits.argmax(-1)

    for i in range(3):
        ids = step(i)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(3, 3 + steps):
        ids = step(i)
        ids.tolist()  # the engine reads sampled tokens on the host every step
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    tok_s = batch * steps / elapsed
    row = {
        "preset": preset,
        "input_len": input_len,
        "batch": batch,
        "fits_by_memory": fits,
        "GB_per_seq": per_seq / 1e9,
        "step_ms": elapsed / steps * 1e3,
        "tok_per_s": tok_s,
        "paper_tok_per_s": PAPER_TOK_S.get(preset),
        "x_paper": tok_s / PAPER_TOK_S[preset] if preset in PAPER_TOK_S else None,
    }
    return row


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
        ["preset", "input_len", "batch", "fits_by_memory", "GB_per_seq", "step_ms", "tok_per_s", "paper_tok_per_s", "x_paper"],
        {"device": device_name(), "torch": torch.__version__, "steps": args.steps},
    )


if __name__ == "__main__":
    main()
