"""Triton row argmax in one launch: ``logits [N, V] -> [N]`` int64, the first index of each row's maximum,
with torch.argmax's rules (a NaN is larger than +inf, the first NaN wins; -0.0 equals +0.0).

At decode N is tiny and V large (131072), so a row is split over ``parts`` programs (grid ``(N, parts)``),
each reducing ``chunk`` contiguous columns, ``BLOCK`` at a time. Every value becomes an int64 key
``order(value) << 32 | (2**31 - 1 - column)``: a larger key is a larger value or, for equal values, a smaller
column, so the row's argmax is the max of its keys, merged in any order. A program writes its chunk's max
key to ``workspace[row, split]`` and bumps ``counter[row]``; the program that bumps it last (sees
``parts - 1``) merges the row's ``parts`` keys, writes the index and resets the counter to 0, so the next
call (or CUDA-graph replay) needs no memset.

Memory ordering (the split-K semaphore pattern): partial store, CTA barrier, then a gpu-scope ``acq_rel``
atomic. Its release publishes the CTA's store before the bump; in the last program it acquires every
earlier release, and the partials are read with volatile loads (from L2, never a stale L1 line).

The workspace and counters are allocated once per (device, rows rounded up to a power of two, splits) and
reused by every later call (pointers stay fixed, as CUDA graphs need). Calls running concurrently on
different streams must not share them; the engine samples on one stream.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import triton
import triton.language as tl

#: columns per loop iteration of a program, and the most programs one row is split over (a power of two):
#: V = 131072 -> 64 programs of 2048 columns each
BLOCK = 1024
SPLITS = 64

_LOWEST_KEY = tl.constexpr(-(2**63))  # below every value's key (-inf's included)

#: (device, row capacity, splits) -> (workspace [rows, splits] int64 keys, counter [rows] int32 zeros)
_WORKSPACES: Dict[Tuple[torch.device, int, int], Tuple[torch.Tensor, torch.Tensor]] = {}


@triton.jit
def _argmax_kernel(x, out, workspace, counter, V, stride_x, parts, CHUNK: tl.constexpr, BLOCK: tl.constexpr, SPLITS: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    best = tl.full([BLOCK], _LOWEST_KEY, tl.int64)
    for start in range(0, CHUNK, BLOCK):
        cols = split * CHUNK + start + tl.arange(0, BLOCK)
        # columns past V read -inf: their key loses to any real column's (larger value or smaller column)
        v = tl.load(x + row * stride_x + cols, mask=cols < V, other=float("-inf")).to(tl.float32)
        bits = tl.where(v == 0.0, 0.0, v).to(tl.int32, bitcast=True)  # -0.0 -> +0.0
        order = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # monotonic in the float: negatives' magnitude bits flipped
        order = tl.where(v != v, 0x7FFFFFFF, order)  # every NaN above +inf
        best = tl.maximum(best, (order.to(tl.int64) << 32) | (0x7FFFFFFF - cols).to(tl.int64))
    tl.store(workspace + row * SPLITS + split, tl.max(best, axis=0))
    tl.debug_barrier()  # every thread's store precedes the release below
    if tl.atomic_add(counter + row, 1, sem="acq_rel") == parts - 1:
        offs = tl.arange(0, SPLITS)
        keys = tl.load(workspace + row * SPLITS + offs, mask=offs < parts, other=_LOWEST_KEY, volatile=True)
        tl.store(out + row, 0x7FFFFFFF - (tl.max(keys, axis=0) & 0x7FFFFFFF))
        tl.store(counter + row, 0)


def _workspace(device: torch.device, rows: int, splits: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(workspace [>= rows, splits] int64, counter [>= rows] int32, zero between calls), made on first use."""
    key = (device, triton.next_power_of_2(rows), splits)
    if key not in _WORKSPACES:
        if device.type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("argmax: call it once with this many rows before CUDA-graph capture (its zeroed counters cannot be made during capture)")
        _WORKSPACES[key] = (torch.empty((key[1], splits), dtype=torch.int64, device=device), torch.zeros(key[1], dtype=torch.int32, device=device))
    return _WORKSPACES[key]


def argmax_triton(logits: torch.Tensor, splits: int = SPLITS, block: int = BLOCK) -> torch.Tensor:
    """``logits [N, V]`` (float, V >= 1, any row stride) ``-> [N]`` int64, equal to ``torch.argmax(logits, -1)``.

    A row is split over at most ``splits`` (a power of two) programs of a whole number of ``block``-column
    loops each (the tests make both small to run many programs per row in the interpreter).
    """
    n, vocab = logits.shape
    out = torch.empty(n, dtype=torch.int64, device=logits.device)
    if n == 0:
        return out
    if logits.stride(1) != 1:
        logits = logits.contiguous()
    block = min(block, triton.next_power_of_2(vocab))
    chunk = block * triton.cdiv(triton.cdiv(vocab, block), splits)
    parts = triton.cdiv(vocab, chunk)
    workspace, counter = _workspace(logits.device, n, splits)
    _argmax_kernel[(n, parts)](
        logits, out, workspace, counter, vocab, logits.stride(0), parts,
        CHUNK=chunk, BLOCK=block, SPLITS=splits, num_warps=4,
    )
    return out
