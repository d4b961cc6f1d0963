"""Build and check the flattened-batch metadata of :mod:`trtllm_flash.ops.interface`.

One helper builds the metadata everywhere (op tests, the runtime, the adapter's contract tests) so a
layout change touches one place.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Dict, Optional, Sequence

import numpy as np
import torch


@dataclass
class BatchMetadata:
    """Metadata of one flattened batch; field names are :data:`interface.METADATA_NAMES`."""

    batch_info_host: torch.Tensor  # int32 [3] on the CPU: num_prefill, num_prefill_tokens, num_decode
    cu_seqlen: torch.Tensor  # int32 [N + 1]
    input_pos: torch.Tensor  # int32 [N]
    slot_idx: torch.Tensor  # int64 [N]
    use_initial_states: torch.Tensor  # bool [N]
    page_table: torch.Tensor  # int32 [N, max_pages]

    def as_dict(self) -> Dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def num_prefill(self) -> int:
        return int(self.batch_info_host[0])

    @property
    def num_prefill_tokens(self) -> int:
        return int(self.batch_info_host[1])

    @property
    def num_decode(self) -> int:
        return int(self.batch_info_host[2])


def metadata_arrays(
    seq_lens: Sequence[int],
    input_pos: Sequence[int],
    slot_idx: Sequence[int],
    page_table: Optional[Sequence[Sequence[int]] | np.ndarray] = None,
) -> Dict[str, np.ndarray]:
    """The fields of :class:`BatchMetadata` as numpy arrays, keyed by field name, for sequences given
    in batch order (prefill sequences first, then decodes).

    A sequence is a *decode* when it brings one token and continues a cached prefix
    (``input_pos > 0``); every decode must come after every prefill. ``page_table`` rows may be
    ragged; they are padded with the sentinel page 0 to the widest row (at least one page). A 2-D
    numpy ``page_table`` is taken as it is.
    dtypes: ``batch_info_host`` int32 [3], ``cu_seqlen``/``input_pos``/``page_table`` int32,
    ``slot_idx`` int64, ``use_initial_states`` bool.
    """
    n = len(seq_lens)
    if not (len(input_pos) == n and len(slot_idx) == n):
        raise ValueError(f"seq_lens, input_pos and slot_idx must have one entry per sequence; got {n}, {len(input_pos)}, {len(slot_idx)}")
    if n == 0:
        raise ValueError("the batch needs at least one sequence")
    if min(seq_lens) < 1:
        raise ValueError(f"seq_lens must be >= 1, got {list(seq_lens)}")
    if min(input_pos) < 0:
        raise ValueError(f"input_pos must be >= 0, got {list(input_pos)}")
    # trailing run of decodes; a decode-shaped sequence before a prefill counts as a 1-token prefill chunk
    num_prefill = n
    while num_prefill and seq_lens[num_prefill - 1] == 1 and input_pos[num_prefill - 1] > 0:
        num_prefill -= 1
    cu = np.fromiter(itertools.accumulate(seq_lens, initial=0), dtype=np.int32, count=n + 1)
    rows = [[0]] * n if page_table is None or len(page_table) == 0 else page_table
    if len(rows) != n:
        raise ValueError(f"page_table must have one row per sequence; got {len(rows)} rows for {n} sequences")
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        table = rows.astype(np.int32, copy=False)
    else:
        table = np.zeros((n, max(1, max(len(r) for r in rows))), dtype=np.int32)
        for i, row in enumerate(rows):
            table[i, : len(row)] = row
    pos = np.array(input_pos, dtype=np.int32)
    return {
        "batch_info_host": np.array([num_prefill, cu[num_prefill], n - num_prefill], dtype=np.int32),
        "cu_seqlen": cu,
        "input_pos": pos,
        "slot_idx": np.array(slot_idx, dtype=np.int64),
        "use_initial_states": pos > 0,
        "page_table": table,
    }


def build_metadata(
    seq_lens: Sequence[int],
    input_pos: Sequence[int],
    slot_idx: Sequence[int],
    page_table: Optional[Sequence[Sequence[int]]] = None,
    device: torch.device | str = "cpu",
) -> BatchMetadata:
    """:func:`metadata_arrays` as torch tensors on ``device`` (``batch_info_host`` stays on the CPU)."""
    arrays = metadata_arrays(seq_lens, input_pos, slot_idx, page_table)
    batch_info_host = torch.from_numpy(arrays.pop("batch_info_host"))
    return BatchMetadata(batch_info_host=batch_info_host, **{name: torch.from_numpy(a).to(device) for name, a in arrays.items()})


def check_metadata(
    num_tokens: int,
    batch_info_host: torch.Tensor,
    cu_seqlen: torch.Tensor,
    slot_idx: torch.Tensor,
    num_slots: int,
) -> None:
    """Raise ``ValueError`` naming the argument when the metadata does not add up (eager path only)."""
    if batch_info_host.device.type != "cpu" or batch_info_host.numel() != 3:
        raise ValueError(f"batch_info_host must be a CPU tensor of 3 ints, got shape {tuple(batch_info_host.shape)} on {batch_info_host.device}")
    num_prefill, num_prefill_tokens, num_decode = (int(v) for v in batch_info_host.tolist())
    n = num_prefill + num_decode
    if min(num_prefill, num_prefill_tokens, num_decode) < 0:
        raise ValueError(f"batch_info_host has a negative entry: {batch_info_host.tolist()}")
    if num_prefill_tokens + num_decode != num_tokens:
        raise ValueError(
            f"batch_info_host {batch_info_host.tolist()} says {num_prefill_tokens} prefill + {num_decode} decode tokens, "
            f"but the inputs hold {num_tokens} tokens"
        )
    if cu_seqlen.numel() < n + 1:
        raise ValueError(f"cu_seqlen needs {n + 1} entries for {n} sequences, got {cu_seqlen.numel()}")
    cu = cu_seqlen[: n + 1].tolist()
    if cu[0] != 0 or any(b < a for a, b in zip(cu, cu[1:])) or cu[num_prefill] != num_prefill_tokens or cu[n] != num_tokens:
        raise ValueError(f"cu_seqlen {cu} does not match batch_info_host {batch_info_host.tolist()} and {num_tokens} tokens")
    if slot_idx.numel() < n:
        raise ValueError(f"slot_idx needs {n} entries, got {slot_idx.numel()}")
    slots = slot_idx[:n]
    if n and (int(slots.min()) < 0 or int(slots.max()) >= num_slots):
        raise ValueError(f"slot_idx {slots.tolist()} out of range for a cache of {num_slots} slots")
