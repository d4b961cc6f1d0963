"""Build and check the flattened-batch metadata of :mod:`trtllm_flash.ops.interface`.

One helper builds the metadata everywhere (op tests, the runtime, the adapter's contract tests) so a
layout change touches one place.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, Optional, Sequence

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


def build_metadata(
    seq_lens: Sequence[int],
    input_pos: Sequence[int],
    slot_idx: Sequence[int],
    page_table: Optional[Sequence[Sequence[int]]] = None,
    device: torch.device | str = "cpu",
) -> BatchMetadata:
    """Metadata for sequences given in batch order (prefill sequences first, then decodes).

    A sequence is a *decode* when it brings one token and continues a cached prefix
    (``input_pos > 0``); every decode must come after every prefill. ``page_table`` rows may be
    ragged; they are padded with the sentinel page 0.
    """
    n = len(seq_lens)
    if not (len(input_pos) == n and len(slot_idx) == n):
        raise ValueError(f"seq_lens, input_pos and slot_idx must have one entry per sequence; got {n}, {len(input_pos)}, {len(slot_idx)}")
    if any(s < 1 for s in seq_lens):
        raise ValueError(f"seq_lens must be >= 1, got {list(seq_lens)}")
    if any(p < 0 for p in input_pos):
        raise ValueError(f"input_pos must be >= 0, got {list(input_pos)}")
    is_decode = [s == 1 and p > 0 for s, p in zip(seq_lens, input_pos)]
    # trailing run of decodes; a decode-shaped sequence before a prefill counts as a 1-token prefill chunk
    num_decode = 0
    for d in reversed(is_decode):
        if not d:
            break
        num_decode += 1
    num_prefill = n - num_decode
    num_prefill_tokens = int(sum(seq_lens[:num_prefill]))
    cu = [0]
    for s in seq_lens:
        cu.append(cu[-1] + int(s))
    rows = [list(r) for r in (page_table or [[0]] * n)]
    if len(rows) != n:
        raise ValueError(f"page_table must have one row per sequence; got {len(rows)} rows for {n} sequences")
    width = max(1, max(len(r) for r in rows))
    padded = [r + [0] * (width - len(r)) for r in rows]
    return BatchMetadata(
        batch_info_host=torch.tensor([num_prefill, num_prefill_tokens, num_decode], dtype=torch.int32),
        cu_seqlen=torch.tensor(cu, dtype=torch.int32, device=device),
        input_pos=torch.tensor(list(input_pos), dtype=torch.int32, device=device),
        slot_idx=torch.tensor(list(slot_idx), dtype=torch.int64, device=device),
        use_initial_states=torch.tensor([p > 0 for p in input_pos], dtype=torch.bool, device=device),
        page_table=torch.tensor(padded, dtype=torch.int32, device=device),
    )


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
