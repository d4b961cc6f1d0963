"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py``.

Mirrors stored version 46243425432 of that file (71,285 chars, SPDX 2022-2026, the RH-3 generation:
resource handlers + 3-int ``batch_info``); signatures and behaviour copied from its text, bodies reduced:

* ``SequenceInfo(max_seq_len, max_batch_size, tokens_per_block=None, max_num_tokens=None,
  vocab_size_padded=None)``: see the class; the shared behaviour (private ``_get_arg``, a field copied
  only once activated, ``nest_sequences(input_ids, position_ids=None, ...)``) is
  ``ad_standin.sequence_info_core``.
* ``ResourceHandler``, ``KVPagedResourceHandler(num_kv_heads, head_dim, dtype, kv_factor=2,
  kv_layout="HND")``, ``StateResourceHandler(*state_shape, dtype)``, ``SSMResourceHandler(num_heads,
  head_dim, d_state, dtype)``, ``CausalConvResourceHandler(conv_dim, d_conv, dtype)`` with upstream's
  ``allocate`` shapes and ``__eq__``.
* ``AttentionDescriptor`` (same abstract / default class methods), ``AttentionRegistry`` (``register``
  asserts a new name, ``get`` asserts a known one, ``has``);
  these and the resource handlers live in ``ad_standin.resource_handlers_core`` (the ``BatchInfo``
  generation has the same).
"""
import math
from typing import Optional

import torch
from ad_standin.sequence_info_core import SequenceInfoCore
from ad_standin.resource_handlers_core import (  # noqa: F401  (upstream's names, re-exported)
    AttentionDescriptor, AttentionRegistry, CausalConvResourceHandler, KVPagedResourceHandler, ResourceHandler,
    ResourceHandlerDict, SSMResourceHandler, StateResourceHandler,
)


class SequenceInfo(SequenceInfoCore):
    """Storage, activation, ``_get_arg`` and ``nest_sequences`` as ``ad_standin.sequence_info_core``;
    this generation's fields: ``tokens_per_block`` (page size), ``max_num_state_slots = max_batch_size +
    1``, ``max_blocks_per_seq``, ``update_cache_information(num_blocks, block_offset_multiplier=0)``
    writing ``max_seq_info = [max_seq_len, max_blocks_per_seq, block_offset_multiplier, max_batch_size]``
    (force-copied: it is set outside ``nest_sequences``)."""

    def __init__(self, max_seq_len: int, max_batch_size: int, tokens_per_block: Optional[int] = None,
                 max_num_tokens: Optional[int] = None, vocab_size_padded: Optional[int] = None):
        self.max_seq_len = max_seq_len
        self.max_batch_size = max_batch_size
        self.tokens_per_block = tokens_per_block or max_seq_len
        self.page_size_for_metadata = self.tokens_per_block
        self.max_blocks_per_seq = math.ceil(max_seq_len / self.tokens_per_block)
        self.max_num_tokens = max_num_tokens or (max_seq_len + 1) * max_batch_size
        self.vocab_size_padded = vocab_size_padded
        self.max_num_state_slots = max_batch_size + 1
        self._num_blocks = None
        b, t = max_batch_size, self.max_num_tokens
        self._init_buffers([
            ("input_ids", t, torch.int), ("position_ids", t, torch.long), ("seq_len", b, torch.int),
            ("cu_seqlen", b + 1, torch.int), ("input_pos", b, torch.int), ("pages_per_seq", b, torch.int),
            ("cu_num_pages", b + 1, torch.int), ("seq_len_with_cache", b, torch.int), ("last_page_len", b, torch.int),
            ("slot_idx", b, torch.long), ("use_initial_states", b, torch.bool), ("batch_info", 3, torch.int),
            ("logits_gather_indices", t, torch.long), ("logits_gather_info", 2, torch.int),
            ("max_seq_info", 4, torch.int), ("cache_loc", (self.max_blocks_per_seq + 1) * b, torch.int),
        ])

    @property
    def num_blocks(self) -> int:
        assert self._num_blocks is not None, "num_blocks not set yet"
        return self._num_blocks

    def update_cache_information(self, num_blocks: int, block_offset_multiplier: int = 0) -> None:
        self._num_blocks = num_blocks
        info = [self.max_seq_len, self.max_blocks_per_seq, block_offset_multiplier, self.max_batch_size]
        self._store_arg("max_seq_info", info, force_copy=True)
        self._copy_to_device()
