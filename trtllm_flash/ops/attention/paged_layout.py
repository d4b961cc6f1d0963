"""Where a token's K/V lives in the paged cache ``kv_cache [num_pages, 2, num_kv_heads, page_size, head_dim]``
(K at index 0 of dim 1, V at 1), in pure torch for the CPU path and the tests.

* full attention (``sliding_window == 0``): position ``p`` of sequence ``i`` is in page
  ``page_table[i, p // page_size]`` at offset ``p % page_size``;
* sliding window ``w > 0``: a ring of ``R = window_pages(w, page_size)`` pages per state slot; position
  ``p`` of the sequence in slot ``s`` is in page ``s * R + (p // page_size) % R`` at offset ``p % page_size``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from trtllm_flash.ops.interface import window_pages


def kv_locations(
    positions: torch.Tensor, page_row: Optional[torch.Tensor], slot: int, page_size: int, sliding_window: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``positions [n]`` of one sequence -> ``(page [n], offset [n])`` int64; ``page_row [max_pages]`` is the
    sequence's page-table row (full attention; ``None`` for a sliding window) and ``slot`` its state slot
    (sliding window)."""
    positions = positions.long()
    logical = positions // page_size
    if sliding_window > 0:
        ring = window_pages(sliding_window, page_size)
        page = slot * ring + logical % ring
    else:
        page = page_row.long()[logical]
    return page, positions % page_size


def read_kv(kv_cache: torch.Tensor, page: torch.Tensor, offset: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """K and V ``[n, num_kv_heads, head_dim]`` of the tokens at ``(page [n], offset [n])``."""
    return kv_cache[page, 0, :, offset], kv_cache[page, 1, :, offset]


def write_kv_(kv_cache: torch.Tensor, page: torch.Tensor, offset: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Store ``k, v [n, num_kv_heads, head_dim]`` at distinct ``(page [n], offset [n])``, in place."""
    kv_cache[page, 0, :, offset] = k.to(kv_cache.dtype)
    kv_cache[page, 1, :, offset] = v.to(kv_cache.dtype)
