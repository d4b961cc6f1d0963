"""Our metadata names (:data:`trtllm_flash.ops.interface.METADATA_NAMES`) in AutoDeploy's terms.

AutoDeploy hands a cached op the ``SequenceInfo`` tensors it names in
``get_standard_metadata_args()`` (matched by name), then the outputs of the descriptor's
prepare-metadata op (``get_prepare_extra_metadata_info``), then caches and constants
(``AD/custom_ops/attention_interface.py``, stored version 46243425432). Our names map as follows:

====================== ==================================================================
ours                   under AutoDeploy (RH-3)
====================== ==================================================================
``batch_info_host``    ``batch_info_host`` (3 ints, host) — the same tensor
``cu_seqlen``          ``cu_seqlen`` (buffer of ``max_batch_size + 1``; our ops read ``[:N+1]``)
``input_pos``          ``input_pos`` (tokens already cached per sequence)
``slot_idx``           ``slot_idx`` (int64)
``use_initial_states`` ``use_initial_states`` (``input_pos > 0``)
``page_table``         not a SequenceInfo field: built per forward by
                       ``torch.ops.trtllm_flash_ad.page_table`` from ``cu_num_pages`` and
                       ``cache_loc`` (AutoDeploy's flat page list), width
                       ``max_seq_info_host[1]`` (= ``max_blocks_per_seq``, constant, so the
                       shape is fixed under CUDA graphs and no device sync is needed)
====================== ==================================================================

Because AutoDeploy passes standard metadata before extra metadata, a descriptor's derived names
(``page_table``) must come after its SequenceInfo names — :func:`split_metadata` checks that.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch

from trtllm_flash.ops.interface import METADATA_NAMES, SENTINEL_PAGE

#: our names that AutoDeploy's SequenceInfo provides under the same name
SEQUENCE_INFO_NAMES: Tuple[str, ...] = ("batch_info_host", "cu_seqlen", "input_pos", "slot_idx", "use_initial_states")

#: our names built by a prepare-metadata op, in output order
DERIVED_NAMES: Tuple[str, ...] = ("page_table",)

assert set(SEQUENCE_INFO_NAMES) | set(DERIVED_NAMES) == set(METADATA_NAMES), "every metadata name needs a mapping"


def split_metadata(names: List[str]) -> Tuple[List[str], List[str]]:
    """Split a descriptor's ``standard_metadata()`` into (SequenceInfo names, derived names).

    Raises ``ValueError`` when a derived name precedes a SequenceInfo name (AutoDeploy could not pass
    them in the cached op's order) or a name is unknown.
    """
    unknown = [n for n in names if n not in METADATA_NAMES]
    if unknown:
        raise ValueError(f"unknown metadata names {unknown}; known: {list(METADATA_NAMES)}")
    native = [n for n in names if n in SEQUENCE_INFO_NAMES]
    derived = [n for n in names if n in DERIVED_NAMES]
    if names != native + derived:
        raise ValueError(f"metadata {names}: derived names {list(DERIVED_NAMES)} must come after {list(SEQUENCE_INFO_NAMES)}")
    if derived and derived != [n for n in DERIVED_NAMES if n in derived]:
        raise ValueError(f"metadata {names}: derived names must follow the order {list(DERIVED_NAMES)}")
    return native, derived


@torch.library.custom_op("trtllm_flash_ad::page_table", mutates_args=())
def page_table(cu_num_pages: torch.Tensor, cache_loc: torch.Tensor, max_seq_info_host: torch.Tensor) -> List[torch.Tensor]:
    """``[page_table]``: row ``i`` = ``cache_loc[cu_num_pages[i] : cu_num_pages[i+1]]``, padded with the
    sentinel page to ``max_seq_info_host[1]`` columns; one row per entry of ``cu_num_pages`` but the last."""
    width = int(max_seq_info_host[1])
    starts = cu_num_pages[:-1].to(torch.long)
    counts = (cu_num_pages[1:] - cu_num_pages[:-1]).to(torch.long)
    column = torch.arange(width, device=cu_num_pages.device)
    valid = column[None, :] < counts[:, None]
    flat = (starts[:, None] + column[None, :]).clamp(max=max(cache_loc.numel() - 1, 0))
    pages = cache_loc.to(torch.int32)[flat] if cache_loc.numel() else torch.zeros_like(flat, dtype=torch.int32)
    return [torch.where(valid, pages, torch.full_like(pages, SENTINEL_PAGE))]


@page_table.register_fake
def _page_table_fake(cu_num_pages: torch.Tensor, cache_loc: torch.Tensor, max_seq_info_host: torch.Tensor) -> List[torch.Tensor]:
    width = torch.library.get_ctx().new_dynamic_size()
    return [cu_num_pages.new_empty(cu_num_pages.shape[0] - 1, width, dtype=torch.int32)]


def prepare_op_for(derived: List[str]) -> Tuple[Optional[Callable], int, List]:
    """``(prepare-metadata op, number of outputs, constants)`` for ``get_prepare_extra_metadata_info``."""
    if not derived:
        return None, 0, []
    assert derived == ["page_table"], derived  # DERIVED_NAMES has one entry, built by one op
    return torch.ops.trtllm_flash_ad.page_table.default, 1, []
