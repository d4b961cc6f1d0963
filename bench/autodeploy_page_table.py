"""Bytes the AutoDeploy page-table prepare op allocates per forward, for the example YAML
(examples/auto_deploy/nemotron_flash_trtllm_flash.yaml: max_batch_size 384, max_seq_len 2,097,152) with
AutoDeploy's default tokens_per_block 32, i.e. up to 65,536 pages per sequence.

Counts the bytes of every tensor the op's aten calls create (views and in-place results excluded), on the
CPU: allocation sizes do not depend on the device. "before" is the op as it was (a [max_batch_size,
max_blocks_per_seq] table with int64 temporaries every forward); "after" builds only the batch's rows,
as wide as its longest page list, except under CUDA-graph capture (width = max pages per sequence).
Both are computed at 1/64 of the width and scaled (allocation sizes are linear in the width).

    python -m bench.autodeploy_page_table
"""
from __future__ import annotations

from typing import Callable, List

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from bench.common import device_name, write_results
from trtllm_flash.autodeploy.metadata import build_page_table
from trtllm_flash.ops.interface import SENTINEL_PAGE

MAX_BATCH, MAX_PAGES, SCALE = 384, 2_097_152 // 32, 64


class AllocatedBytes(TorchDispatchMode):
    """Sums the bytes of the fresh tensors aten ops return inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (list, tuple)) else [out]
        for tensor, ret in zip(outs, func._schema.returns):
            if isinstance(tensor, torch.Tensor) and ret.alias_info is None:
                self.bytes += tensor.numel() * tensor.element_size()
        return out


def allocated(fn: Callable[[], object]) -> int:
    counter = AllocatedBytes()
    with counter:
        fn()
    return counter.bytes


def before(cu_num_pages: torch.Tensor, cache_loc: torch.Tensor, width: int) -> List[torch.Tensor]:
    """The op before this change: every row of cu_num_pages' capacity, max_blocks_per_seq wide."""
    starts = cu_num_pages[:-1].to(torch.long)
    counts = (cu_num_pages[1:] - cu_num_pages[:-1]).to(torch.long)
    column = torch.arange(width, device=cu_num_pages.device)
    valid = column[None, :] < counts[:, None]
    flat = (starts[:, None] + column[None, :]).clamp(max=max(cache_loc.numel() - 1, 0))
    pages = cache_loc.to(torch.int32)[flat]
    return [torch.where(valid, pages, torch.full_like(pages, SENTINEL_PAGE))]


def case(rows: int, pages_per_seq: int, capture: bool) -> int:
    """Bytes of the new op for ``rows`` sequences of ``pages_per_seq`` pages. A capture (which needs a GPU)
    allocates what an eager build of full-width rows allocates, so that is what is counted for it."""
    width = MAX_PAGES // SCALE if capture else pages_per_seq
    cu = torch.arange(rows + 1, dtype=torch.int32) * width
    cache_loc = torch.arange(rows * width, dtype=torch.int32)
    scale = SCALE if capture else 1
    return allocated(lambda: build_page_table(rows, cu, cu, cache_loc, width)) * scale


def main() -> None:
    width = MAX_PAGES // SCALE
    cu = torch.arange(MAX_BATCH + 1, dtype=torch.int32) * 128
    cache_loc = torch.arange(MAX_BATCH * 128, dtype=torch.int32)
    rows = [
        {"case": "before: any forward (384 rows x 65,536)", "bytes": allocated(lambda: before(cu, cache_loc, width)) * SCALE},
        {"case": "after: eager, 384 sequences of 4,096 tokens", "bytes": case(384, 128, capture=False)},
        {"case": "after: eager, 1 sequence of 4,096 tokens", "bytes": case(1, 128, capture=False)},
        {"case": "after: CUDA graph of batch 1 (65,536 wide)", "bytes": case(1, 128, capture=True)},
        {"case": "after: CUDA graph of batch 384 (65,536 wide)", "bytes": case(384, 128, capture=True)},
    ]
    for row in rows:
        row["MiB"] = round(row["bytes"] / 2**20, 3)
    write_results("autodeploy_page_table", rows, ["case", "bytes", "MiB"], {"device": device_name(), "tokens_per_block": 32})


if __name__ == "__main__":
    main()
