"""Our metadata names (:data:`trtllm_flash.ops.interface.METADATA_NAMES`) in AutoDeploy's terms.

AutoDeploy hands a cached op the ``SequenceInfo`` tensors it names in
``get_standard_metadata_args()`` (matched by name), then the outputs of the descriptor's
prepare-metadata op (``get_prepare_extra_metadata_info``), then caches and constants
(``AD/custom_ops/attention_interface.py`` in every supported generation). Our names map as follows:

====================== ==================================================================
ours                   under AutoDeploy (3-int ``batch_info`` generations; the ``BatchInfo``
                       generation builds all of them in :func:`metadata_from_batch_info`)
====================== ==================================================================
``batch_info_host``    ``batch_info_host`` (3 ints, host) — the same tensor
``cu_seqlen``          ``cu_seqlen`` (buffer of ``max_batch_size + 1``; our ops read ``[:N+1]``)
``input_pos``          ``input_pos`` (tokens already cached per sequence)
``slot_idx``           ``slot_idx`` (int64)
``use_initial_states`` ``use_initial_states`` (``input_pos > 0``)
``page_table``         not a SequenceInfo field: built per forward by a prepare-metadata op
                       (:func:`page_table`, :func:`page_table_from_capacity`,
                       :func:`metadata_from_batch_info`; each generation's mapping module
                       names its own) from ``cu_num_pages`` and ``cache_loc``
                       (AutoDeploy's flat page list): one row per sequence of the batch, as
                       wide as its longest page list (host copy, no device sync) — or, while
                       a CUDA graph is captured, the most pages a sequence can hold
====================== ==================================================================

Because AutoDeploy passes standard metadata before extra metadata, a descriptor's derived names
(``page_table``) must come after its SequenceInfo names — :func:`split_metadata` checks that.
"""
from __future__ import annotations

from typing import List, Tuple

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


def num_sequences(batch_info_host: torch.Tensor) -> int:
    """``num_prefill + num_decode`` of a 3-int host ``batch_info_host`` (no device sync)."""
    num_prefill, _, num_decode = batch_info_host[:3].tolist()
    return num_prefill + num_decode


def build_page_table(
    num_seqs: int, cu_num_pages: torch.Tensor, cu_num_pages_host: torch.Tensor, cache_loc: torch.Tensor, capture_width: int
) -> torch.Tensor:
    """Our ``page_table [num_seqs, width]`` int32 from AutoDeploy's flat page list (:func:`page_table_rows`).

    ``width`` is the batch's longest page list, read from the host copy ``cu_num_pages_host`` (no device
    sync), except while a CUDA graph is being captured: a replay may serve longer sequences, so it is
    ``capture_width`` (the most pages a sequence can hold).
    """
    capturing = cache_loc.is_cuda and torch.cuda.is_current_stream_capturing()
    if capturing or num_seqs == 0:
        width = capture_width
    else:
        host = cu_num_pages_host[: num_seqs + 1]
        width = int((host[1:] - host[:-1]).max())
    return page_table_rows(num_seqs, cu_num_pages, cache_loc, width)


def page_table_rows(num_seqs: int, cu_num_pages: torch.Tensor, cache_loc: torch.Tensor, width: int) -> torch.Tensor:
    """``[num_seqs, max(width, 1)]`` int32: row ``i`` = ``cache_loc[cu_num_pages[i] : cu_num_pages[i+1]]``,
    then :data:`SENTINEL_PAGE` (never read by the cached op). Only the batch's rows are built; transient
    memory is an int32 index and a bool mask of the table's size besides the table (9 bytes per entry)."""
    width = max(int(width), 1)
    starts = cu_num_pages[:num_seqs].to(torch.int32)
    counts = cu_num_pages[1 : num_seqs + 1].to(torch.int32) - starts
    column = torch.arange(width, dtype=torch.int32, device=cu_num_pages.device)
    index = starts[:, None] + column[None, :]
    padding = column[None, :] >= counts[:, None]
    if cache_loc.numel() == 0:
        return torch.full_like(index, SENTINEL_PAGE)
    index.clamp_(max=cache_loc.numel() - 1)
    table = cache_loc.to(torch.int32).index_select(0, index.view(-1)).view(num_seqs, width)
    return table.masked_fill_(padding, SENTINEL_PAGE)


def page_table_fake(cu_num_pages: torch.Tensor) -> List[torch.Tensor]:
    """Fake result of every page-table prepare op: ``[rows, width]`` int32, both data-dependent."""
    ctx = torch.library.get_ctx()
    return [cu_num_pages.new_empty(ctx.new_dynamic_size(), ctx.new_dynamic_size(), dtype=torch.int32)]


@torch.library.custom_op("trtllm_flash_ad::page_table", mutates_args=())
def page_table(
    batch_info_host: torch.Tensor, cu_num_pages: torch.Tensor, cu_num_pages_host: torch.Tensor, cache_loc: torch.Tensor,
    max_seq_info_host: torch.Tensor,
) -> List[torch.Tensor]:
    """``[page_table]`` for generations whose ``SequenceInfo`` has ``max_seq_info``
    (``[max_seq_len, max_blocks_per_seq, block_offset_multiplier, max_batch_size]``): a CUDA graph is
    captured with ``max_blocks_per_seq`` columns."""
    return [build_page_table(num_sequences(batch_info_host), cu_num_pages, cu_num_pages_host, cache_loc, int(max_seq_info_host[1]))]


@page_table.register_fake
def _page_table_fake(batch_info_host, cu_num_pages, cu_num_pages_host, cache_loc, max_seq_info_host):
    return page_table_fake(cu_num_pages)


@torch.library.custom_op("trtllm_flash_ad::page_table_from_capacity", mutates_args=())
def page_table_from_capacity(
    batch_info_host: torch.Tensor, cu_num_pages: torch.Tensor, cu_num_pages_host: torch.Tensor, cache_loc: torch.Tensor
) -> List[torch.Tensor]:
    """``[page_table]`` for generations without ``max_seq_info``: there ``cache_loc``'s buffer holds
    ``(max_seq_len // page_size + 1) * max_batch_size`` entries and ``cu_num_pages`` ``max_batch_size + 1``
    (``SequenceInfo.__init__``), so a CUDA graph is captured with their ratio as width (at least
    ``max_blocks_per_seq``)."""
    capture_width = cache_loc.numel() // max(cu_num_pages.numel() - 1, 1)
    return [build_page_table(num_sequences(batch_info_host), cu_num_pages, cu_num_pages_host, cache_loc, capture_width)]


@page_table_from_capacity.register_fake
def _page_table_from_capacity_fake(batch_info_host, cu_num_pages, cu_num_pages_host, cache_loc):
    return page_table_fake(cu_num_pages)


def absorbed_batch_info(batch_info_host: torch.Tensor) -> torch.Tensor:
    """Our 3-int ``[num_prefill, num_prefill_tokens, num_decode]`` (host) from a 12-int ``BatchInfo``
    tensor, extend requests counted as prefill (they come between prefill and decode tokens)."""
    prefill, prefill_tokens, extend, extend_tokens, decode = batch_info_host[:5].tolist()
    return torch.tensor([prefill + extend, prefill_tokens + extend_tokens, decode], dtype=torch.int32)


@torch.library.custom_op("trtllm_flash_ad::metadata_from_batch_info", mutates_args=())
def metadata_from_batch_info(
    batch_info_host: torch.Tensor, cu_seqlen: torch.Tensor, input_pos: torch.Tensor, slot_idx: torch.Tensor,
    use_initial_states: torch.Tensor, cu_num_pages: torch.Tensor, cache_loc: torch.Tensor, names: str,
) -> List[torch.Tensor]:
    """Our metadata ``names`` (comma-separated, in the cached op's order) for the ``BatchInfo`` generation:
    ``batch_info_host`` from :func:`absorbed_batch_info`; ``cu_seqlen``, ``input_pos``, ``slot_idx``,
    ``use_initial_states`` copied (an op's outputs may not alias its inputs); ``page_table`` with the batch's
    rows, ``max_blocks_per_seq`` (``batch_info_host[7]``) wide."""
    ours = absorbed_batch_info(batch_info_host)
    built = {
        "batch_info_host": lambda: ours,
        "cu_seqlen": cu_seqlen.clone,
        "input_pos": input_pos.clone,
        "slot_idx": slot_idx.clone,
        "use_initial_states": use_initial_states.clone,
        "page_table": lambda: page_table_rows(int(ours[0] + ours[2]), cu_num_pages, cache_loc, int(batch_info_host[7])),
    }
    return [built[name]() for name in names.split(",")]


@metadata_from_batch_info.register_fake
def _metadata_from_batch_info_fake(batch_info_host, cu_seqlen, input_pos, slot_idx, use_initial_states, cu_num_pages, cache_loc, names):
    fakes = {
        "batch_info_host": lambda: batch_info_host.new_empty(3),
        "cu_seqlen": lambda: torch.empty_like(cu_seqlen),
        "input_pos": lambda: torch.empty_like(input_pos),
        "slot_idx": lambda: torch.empty_like(slot_idx),
        "use_initial_states": lambda: torch.empty_like(use_initial_states),
        "page_table": lambda: page_table_fake(cu_num_pages)[0],
    }
    return [fakes[name]() for name in names.split(",")]
