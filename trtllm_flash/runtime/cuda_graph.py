"""CUDA-graph replay of decode-only batches (the ``torch-cudagraph`` compile backend).

A decode-only batch of ``n`` sequences is padded up to the smallest captured size ``b >= n`` with
sentinel rows (token 0 at position 0, ``input_pos`` 0, the reserved state slot ``num_slots - 1``, a
page-table row of :data:`SENTINEL_PAGE`) and replayed from the graph captured for ``b``. Graphs are
captured lazily on the first decode batch, for every size, largest first, in one memory pool (the
smaller graphs reuse the largest one's memory), with every row a sentinel row so that warm-up and capture
write nothing into live slots or pages. They are recaptured when the cache tensors change.

Anything else (prefill or mixed batches, batches larger than the largest size, CPU tensors) runs the
graph module eagerly.

:meth:`CudaGraphRunner.decode_steps` replays ``k`` greedy decode steps from one graph
(:mod:`trtllm_flash.runtime.multi_step`), captured lazily per ``(size, k)`` in the same pool; the graph
saves the inputs it advances and restores them at its end, so the static buffers (and the sentinel
rows) hold the same values after a replay as before it.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import triton
import triton.language as tl

from trtllm_flash.ops.interface import SENTINEL_PAGE, CacheSpec, StateCache
from trtllm_flash.runtime.multi_step import ADVANCED, greedy_decode_steps

logger = logging.getLogger(__name__)


def check_graph_batch_sizes(batch_sizes: Sequence[int], max_batch_size: int) -> List[int]:
    """Sizes sorted largest first; a size above ``max_batch_size`` (more rows than state slots) is an error."""
    sizes = sorted({int(b) for b in batch_sizes}, reverse=True)
    if any(b < 1 for b in sizes):
        raise ValueError(f"cuda_graph_batch_sizes must be positive, got {list(batch_sizes)}")
    too_big = [b for b in sizes if b > max_batch_size]
    if too_big:
        raise ValueError(
            f"cuda_graph_batch_sizes {too_big} exceed max_batch_size {max_batch_size}: a padded graph batch would "
            f"need more state slots than exist; drop them or raise max_batch_size"
        )
    return sizes


@triton.jit
def _fill_rows_kernel(
    tokens, tokens_src, positions, positions_src, input_pos, input_pos_src, slot_idx, slot_idx_src,
    use_initial, use_initial_src, gather_idx, gather_idx_src, pages, pages_src, pages_stride, pages_src_stride, width,
    HAS_INPUT_POS: tl.constexpr, HAS_SLOT_IDX: tl.constexpr, HAS_USE_INITIAL_STATES: tl.constexpr, HAS_GATHER_IDX: tl.constexpr,
    HAS_PAGE_TABLE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Row ``r`` of every per-row static input from its source; page-table columns ``[0, width)``."""
    row = tl.program_id(0)
    tl.store(tokens + row, tl.load(tokens_src + row))
    tl.store(positions + row, tl.load(positions_src + row))
    if HAS_INPUT_POS:
        tl.store(input_pos + row, tl.load(input_pos_src + row))
    if HAS_SLOT_IDX:
        tl.store(slot_idx + row, tl.load(slot_idx_src + row))
    if HAS_USE_INITIAL_STATES:
        tl.store(use_initial + row, tl.load(use_initial_src + row))
    if HAS_GATHER_IDX:
        tl.store(gather_idx + row, tl.load(gather_idx_src + row))
    if HAS_PAGE_TABLE:
        for c0 in range(0, width, BLOCK):
            cols = c0 + tl.arange(0, BLOCK)
            mask = cols < width
            b_pages = tl.load(pages_src + row * pages_src_stride + cols, mask=mask)
            tl.store(pages + row * pages_stride + cols, b_pages, mask=mask)


class _StaticBatch:
    """Static input buffers of the largest graph; a size-``b`` graph reads views of their first ``b`` rows.

    ``input_ids, position_ids [1, B]``, ``cu_seqlen [B + 1]``, ``input_pos, slot_idx, use_initial_states,
    gather_idx [B]``, ``page_table [B, max_pages]``.
    """

    def __init__(self, max_size: int, max_pages: int, sentinel_slot: int, device: torch.device):
        self.sentinel_slot = sentinel_slot
        self.tokens = torch.zeros(1, max_size, dtype=torch.int64, device=device)
        self.positions = torch.zeros(1, max_size, dtype=torch.int64, device=device)
        self.cu_seqlen = torch.arange(max_size + 1, dtype=torch.int32, device=device)
        self.input_pos = torch.zeros(max_size, dtype=torch.int32, device=device)
        self.slot_idx = torch.full((max_size,), sentinel_slot, dtype=torch.int64, device=device)
        self.use_initial_states = torch.zeros(max_size, dtype=torch.bool, device=device)
        self.page_table = torch.full((max_size, max_pages), SENTINEL_PAGE, dtype=torch.int32, device=device)
        self.gather_idx = torch.arange(max_size, dtype=torch.int64, device=device)
        self.live_rows = 0  # rows [live_rows, max_size) hold sentinel values

    def views(self, b: int) -> Dict[str, torch.Tensor]:
        return {
            "input_ids": self.tokens[:, :b],
            "position_ids": self.positions[:, :b],
            "batch_info_host": torch.tensor([0, 0, b], dtype=torch.int32),
            "cu_seqlen": self.cu_seqlen[: b + 1],
            "input_pos": self.input_pos[:b],
            "slot_idx": self.slot_idx[:b],
            "use_initial_states": self.use_initial_states[:b],
            "page_table": self.page_table[:b],
            "gather_idx": self.gather_idx[:b],
        }

    def fill_sentinel(self, start: int = 0, stop: Optional[int] = None) -> None:
        """Rows ``[start, stop)`` (default: all) become sentinel rows (used for warm-up, capture and padding)."""
        rows = slice(start, stop)
        self.tokens[:, rows].zero_()
        self.positions[:, rows].zero_()
        self.input_pos[rows].zero_()
        self.slot_idx[rows].fill_(self.sentinel_slot)
        self.use_initial_states[rows].zero_()
        self.page_table[rows].fill_(SENTINEL_PAGE)
        self.gather_idx[rows].copy_(torch.arange(self.gather_idx.numel(), device=self.gather_idx.device)[rows])
        self.live_rows = min(self.live_rows, start)  # callers reset every live row from ``start`` on

    def fill(self, n: int, inputs: Dict[str, torch.Tensor]) -> None:
        """Live rows ``[0, n)`` from ``inputs``; every row from ``n`` on is (left) a sentinel row. Rows that
        earlier, larger batches made live are reset; at a steady batch size nothing but the copies runs."""
        if self.live_rows > n:
            self.fill_sentinel(n, self.live_rows)
        self.live_rows = n
        # one kernel for every field: seven separate copies cost ~15 us of a ~0.9 ms batch-1 step
        def source(name: str, fallback: torch.Tensor) -> torch.Tensor:  # fallback: never read (its flag is off)
            return inputs[name].reshape(-1).contiguous() if name in inputs else fallback

        table = inputs["page_table"][:n] if "page_table" in inputs else self.page_table
        if table.stride(-1) != 1:
            table = table.contiguous()
        flags = {f"HAS_{name.upper()}": name in inputs for name in ("input_pos", "slot_idx", "use_initial_states", "gather_idx", "page_table")}
        _fill_rows_kernel[(n,)](
            self.tokens, source("input_ids", self.tokens),
            self.positions, source("position_ids", self.positions),
            self.input_pos, source("input_pos", self.input_pos),
            self.slot_idx, source("slot_idx", self.slot_idx),
            self.use_initial_states.view(torch.uint8), source("use_initial_states", self.use_initial_states).view(torch.uint8),
            self.gather_idx, source("gather_idx", self.gather_idx),
            self.page_table, table, self.page_table.stride(0), table.stride(0), table.shape[1],
            **flags, BLOCK=256,
        )


class CudaGraphRunner:
    """Callable with the graph module's keyword inputs; returns the graph output, ``[n, vocab]`` rows for a
    replayed decode batch (the padded rows cut off)."""

    def __init__(
        self,
        module: Callable[..., torch.Tensor],
        input_names: Sequence[str],
        batch_sizes: Sequence[int],
        max_batch_size: int,
        max_pages_per_seq: int,
        cache_specs: Dict[str, CacheSpec],
        capture_module: Optional[Callable[..., torch.Tensor]] = None,
    ):
        self.module = module
        self.capture_module = module if capture_module is None else capture_module
        self.input_names = set(input_names)
        self.sizes = check_graph_batch_sizes(batch_sizes, max_batch_size)
        self.max_batch_size = max_batch_size
        self.max_pages_per_seq = max_pages_per_seq
        self.cache_specs = dict(cache_specs)
        self._graphs: Dict[int, Tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        #: (size, k) -> the k-step graph and its tokens [k, size]
        self._multi_graphs: Dict[Tuple[int, int], Tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._pool = None
        self._captured_for: Optional[Tuple[int, ...]] = None
        self._static: Optional[_StaticBatch] = None

    @property
    def captured_sizes(self) -> List[int]:
        return sorted(self._graphs, reverse=True)

    def captured_graph(self, size: int) -> torch.cuda.CUDAGraph:
        """The graph captured for decode batch ``size`` (for benchmarks and profiling)."""
        return self._graphs[size][0]

    def graph_size_for(self, num_decode: int) -> Optional[int]:
        """The smallest captured size that holds ``num_decode`` rows (None: run eagerly)."""
        fitting = [b for b in self.sizes if b >= num_decode]
        return min(fitting) if fitting else None

    def _replay_size(self, inputs: Dict[str, torch.Tensor]) -> Optional[int]:
        """The captured size that replays ``inputs`` (None: they run eagerly)."""
        if "batch_info_host" not in inputs:  # a graph without caches has no decode batches to replay
            return None
        num_prefill, _, num_decode = (int(v) for v in inputs["batch_info_host"].tolist())
        size = self.graph_size_for(num_decode) if num_prefill == 0 and num_decode > 0 else None
        too_wide = "page_table" in inputs and inputs["page_table"].shape[1] > self.max_pages_per_seq
        if size is None or inputs["input_ids"].device.type != "cuda" or too_wide:
            return None
        caches = {k: v for k, v in inputs.items() if k in self.cache_specs}
        self._ensure_captured(caches, inputs["input_ids"].device)
        return size

    def __call__(self, **inputs: torch.Tensor) -> torch.Tensor:
        size = self._replay_size(inputs)
        if size is None:
            return self.module(**inputs)
        graph, output = self._graphs[size]
        num_decode = int(inputs["batch_info_host"][2])
        self._static.fill(num_decode, inputs)
        graph.replay()
        return output.reshape(-1, output.shape[-1])[:num_decode]

    def decode_steps(self, k: int, **inputs: torch.Tensor) -> torch.Tensor:
        """Greedy tokens ``[k, n]`` (int64) of ``k`` decode steps of the decode-only batch ``inputs``, from
        one graph replay when a captured size holds it, else eagerly (``inputs``' advanced tensors are
        then advanced in place, see :func:`greedy_decode_steps`)."""
        num_decode = int(inputs["input_ids"].numel())
        size = self._replay_size(inputs)
        if size is None:
            out = torch.empty(k, num_decode, dtype=torch.int64, device=inputs["input_ids"].device)
            return greedy_decode_steps(self.module, dict(inputs), out)
        graph, tokens = self._multi_graph(size, k, {name: inputs[name] for name in self.cache_specs})
        self._static.fill(num_decode, inputs)
        graph.replay()
        return tokens[:, :num_decode]

    def _multi_graph(self, size: int, k: int, caches: Dict[str, torch.Tensor]) -> Tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """The ``k``-step graph of batch ``size`` (captured on first use, on sentinel rows only)."""
        key = (size, k)
        if key not in self._multi_graphs:
            static = self._static
            static.fill_sentinel()
            kwargs = {name: v for name, v in static.views(size).items() if name in self.input_names}
            kwargs.update(caches)
            advanced = {name: kwargs[name] for name in ADVANCED if name in kwargs}
            saved = {name: t.clone() for name, t in advanced.items()}
            tokens = torch.empty(k, size, dtype=torch.int64, device=static.tokens.device)

            def steps() -> None:
                for name, t in advanced.items():
                    saved[name].copy_(t)
                greedy_decode_steps(self.capture_module, dict(kwargs), tokens)
                for name, t in advanced.items():
                    t.copy_(saved[name])

            steps()  # warm-up on sentinel rows (compilation, lazy inits, allocator)
            torch.cuda.synchronize(tokens.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                steps()
            self._multi_graphs[key] = (graph, tokens)
            logger.info("captured a %d-step decode graph for batch size %d", k, size)
        return self._multi_graphs[key]

    def _sentinel_slot(self, caches: Dict[str, torch.Tensor]) -> int:
        slots = [caches[name].shape[0] for name, spec in self.cache_specs.items() if isinstance(spec, StateCache)]
        return (slots[0] if slots else self.max_batch_size + 1) - 1

    def _ensure_captured(self, caches: Dict[str, torch.Tensor], device: torch.device) -> None:
        key = tuple(caches[name].data_ptr() for name in sorted(caches))
        if key == self._captured_for:
            return
        self._graphs.clear()
        self._multi_graphs.clear()
        self._static = _StaticBatch(self.sizes[0], self.max_pages_per_seq, self._sentinel_slot(caches), device)
        pool = None
        for size in self.sizes:  # largest first: the smaller graphs fit in its pool
            self._static.fill_sentinel()
            kwargs = {k: v for k, v in self._static.views(size).items() if k in self.input_names}
            kwargs.update(caches)
            self.capture_module(**kwargs)  # warm-up (compilation, lazy inits, allocator) on sentinel rows only
            torch.cuda.synchronize(device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                output = self.capture_module(**kwargs)
            pool = graph.pool() if pool is None else pool
            self._graphs[size] = (graph, output)
        self._pool = pool
        self._captured_for = key
        logger.info("captured CUDA graphs for decode batch sizes %s", self.sizes)
