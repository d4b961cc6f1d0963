"""Input checks of the attention ops (eager / CPU path); each failure is a ``ValueError`` naming the argument."""
from __future__ import annotations

import math

import torch

from trtllm_flash.ops.dtypes import check_float
from trtllm_flash.ops.interface import window_pages
from trtllm_flash.ops.metadata import check_metadata

_INTS = (torch.int32, torch.int64)


def check_source_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, sliding_window: int) -> None:
    """``q [b, s, h, d]``, ``k, v [b, s, hkv, d]`` of one float dtype with ``h % hkv == 0``, a finite
    positive ``scale`` and ``sliding_window >= 0``."""
    if q.dim() != 4:
        raise ValueError(f"q must be 4-D [b, s, h, d], got shape {tuple(q.shape)}")
    check_float("q", q)
    b, s, h, d = q.shape
    for name, t in (("k", k), ("v", v)):
        if t.dim() != 4 or tuple(t.shape[:2]) != (b, s) or t.shape[3] != d:
            raise ValueError(f"{name} must be [b, s, hkv, d] = [{b}, {s}, hkv, {d}], got shape {tuple(t.shape)}")
        if t.dtype != q.dtype:
            raise ValueError(f"{name} must have q's dtype {q.dtype}, got {t.dtype}")
    hkv = k.shape[2]
    if v.shape[2] != hkv:
        raise ValueError(f"v must have k's {hkv} kv heads, got shape {tuple(v.shape)}")
    if hkv == 0 or h % hkv != 0:
        raise ValueError(f"k's kv heads must divide q's {h} heads, got {hkv}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite positive float, got {scale}")
    if sliding_window < 0:
        raise ValueError(f"sliding_window must be >= 0 (0 = full attention), got {sliding_window}")


def check_cached_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    input_pos: torch.Tensor,
    slot_idx: torch.Tensor,
    page_table: torch.Tensor,
    kv_cache: torch.Tensor,
    scale: float,
    sliding_window: int,
) -> None:
    """The source checks, a flattened ``[1, T, ...]`` or ``[B, 1, ...]`` batch, the metadata, and
    ``kv_cache [num_pages, 2, hkv, page_size, d]`` in k's dtype whose pages cover every position written."""
    check_source_inputs(q, k, v, scale, sliding_window)
    b, s, _, d = q.shape
    hkv = k.shape[2]
    if b != 1 and s != 1:
        raise ValueError(f"q must be a flattened batch [1, T, h, d] or [B, 1, h, d], got shape {tuple(q.shape)}")
    if kv_cache.dim() != 5 or kv_cache.shape[1] != 2 or kv_cache.shape[2] != hkv or kv_cache.shape[4] != d:
        raise ValueError(f"kv_cache must be [num_pages, 2, {hkv}, page_size, {d}], got shape {tuple(kv_cache.shape)}")
    if kv_cache.dtype != k.dtype:
        raise ValueError(f"kv_cache must have k's dtype {k.dtype}, got {kv_cache.dtype}")
    num_pages, page_size = kv_cache.shape[0], kv_cache.shape[3]
    if num_pages < 1 or page_size < 1:
        raise ValueError(f"kv_cache must hold at least one page of at least one token, got shape {tuple(kv_cache.shape)}")
    for name, t, rank in (("cu_seqlen", cu_seqlen, 1), ("input_pos", input_pos, 1), ("slot_idx", slot_idx, 1), ("page_table", page_table, 2)):
        if t.dim() != rank or t.dtype not in _INTS:
            raise ValueError(f"{name} must be a {rank}-D int32/int64 tensor, got {t.dtype} of shape {tuple(t.shape)}")
    if sliding_window > 0:
        ring = window_pages(sliding_window, page_size)
        if num_pages % ring != 0:
            raise ValueError(f"kv_cache of a sliding-window layer must hold whole rings of {ring} pages, got {num_pages} pages")
        num_slots = num_pages // ring
    else:
        num_slots = torch.iinfo(torch.int64).max
    check_metadata(b * s, batch_info_host, cu_seqlen, slot_idx, num_slots)
    num_prefill, _, num_decode = (int(x) for x in batch_info_host.tolist())
    n = num_prefill + num_decode
    if input_pos.numel() < n or (n and int(input_pos[:n].min()) < 0):
        raise ValueError(f"input_pos needs {n} non-negative entries, got {input_pos.tolist()}")
    if sliding_window == 0 and n:
        _check_page_table(page_table, input_pos[:n], cu_seqlen[: n + 1], page_size, num_pages)


def _check_page_table(page_table: torch.Tensor, input_pos: torch.Tensor, cu_seqlen: torch.Tensor, page_size: int, num_pages: int) -> None:
    """Each sequence's row must name in-range pages for every position up to its last new token."""
    n = input_pos.numel()
    if page_table.shape[0] < n:
        raise ValueError(f"page_table needs a row per sequence ({n}), got shape {tuple(page_table.shape)}")
    ends = input_pos.long() + (cu_seqlen[1:] - cu_seqlen[:-1]).long()
    pages_needed = (ends + page_size - 1) // page_size
    if int(pages_needed.max()) > page_table.shape[1]:
        raise ValueError(f"page_table has {page_table.shape[1]} columns but a sequence reaches page {int(pages_needed.max())}")
    used = torch.arange(page_table.shape[1], device=page_table.device)[None, :] < pages_needed[:, None].to(page_table.device)
    ids = page_table[:n][used]
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_pages):
        raise ValueError(f"page_table names pages {ids.unique().tolist()} outside a cache of {num_pages} pages")
