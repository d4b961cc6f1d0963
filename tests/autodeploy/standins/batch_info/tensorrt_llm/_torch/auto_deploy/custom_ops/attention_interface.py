"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py``, the ``BatchInfo``
generation: NVIDIA/TensorRT-LLM stored version 51834141611 of the code index (84,756 chars, SPDX 2022-2026).
Behaviour mirrored (bodies reduced):

* ``BatchInfo(batch_info_host)``: a 12-int host tensor ``[num_prefill, num_prefill_tokens, num_extend,
  num_extend_tokens, num_decode, num_decode_tokens, max_context_length, max_blocks_per_seq,
  block_offset_multiplier, max_batch_size, num_tokens_to_gather, gather_required]``; ``update`` writes the
  first six, ``get_num_sequences`` / ``get_num_tokens`` read slots ``0,2,4`` / ``1,3,5``,
  ``get_absorbed_info`` folds extend into prefill, ``update_max_seq_info`` / ``get_max_blocks_per_seq``,
  ``update_tokens_gather_info``;
* ``SequenceInfo(max_seq_len, max_batch_size, max_num_tokens, tokens_per_block=None,
  vocab_size_padded=None)``: buffers sized for ``max(2, max_batch_size)`` sequences; ``available_args`` =
  every field, ``<field>_host`` and ``batch_info_host``; PUBLIC ``get_arg(name, truncate=None,
  unflatten=None)`` (``batch_info_host`` is the ``BatchInfo`` tensor; ``input_ids`` / ``position_ids``
  truncated and shaped ``[b, s]`` for generate-only batches or before the first ``activate_arg``, else
  ``[1, total]``); every field given to ``nest_sequences`` is staged (one that is active must be given) and
  host -> device is copied once at its end; ``update_cache_information(num_blocks, block_offset_multiplier=0)`` writes slots
  6-9 and grows ``cache_loc`` to ``max_batch_size * max_blocks_per_seq + 1``;
  ``nest_sequences(input_ids (flat), cu_seqlen, input_pos, batch_info=None, cache_loc=None,
  cu_num_pages=None, extra_page_per_seq=None, slot_idx=None, gather_context_logits=False)``: default
  ``batch_info`` = trailing length-1 sequences are decodes, the rest prefill, no extend; ``seq_len``,
  ``position_ids``, ``last_page_len``, ``seq_len_with_cache``, ``use_initial_states = input_pos > 0``
  derived on the host; token gather indices = last token of each prefill + every other token unless
  ``gather_context_logits``;
* resource handlers, ``AttentionDescriptor`` (no ``is_paged``) and ``AttentionRegistry`` as in the
  resource-handler generation's stand-in (both from ``ad_standin.resource_handlers_core``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from ad_standin.resource_handlers_core import (  # noqa: F401  (upstream's names, re-exported)
    AttentionDescriptor, AttentionRegistry, CausalConvResourceHandler, KVPagedResourceHandler, ResourceHandler,
    ResourceHandlerDict, SSMResourceHandler, StateResourceHandler,
)


class BatchInfo:
    _NUM_ELEMENTS = 12

    def __init__(self, batch_info_host: Optional[torch.Tensor] = None):
        self._batch_info = torch.zeros(self._NUM_ELEMENTS, dtype=torch.int) if batch_info_host is None else batch_info_host

    def serialize(self) -> torch.Tensor:
        return self._batch_info

    def update(self, batch_info: List[int]) -> None:
        self._batch_info[:6] = torch.as_tensor(batch_info, dtype=self._batch_info.dtype)

    def is_generate_only(self) -> bool:
        return self._batch_info[:4].sum().item() == 0

    def get_num_sequences(self) -> Tuple[int, int, int]:
        return tuple(self._batch_info[:6:2].tolist())

    def get_num_tokens(self) -> Tuple[int, int, int]:
        return tuple(self._batch_info[1:6:2].tolist())

    def get_total_num_sequences(self) -> int:
        return sum(self.get_num_sequences())

    def get_total_num_tokens(self) -> int:
        return sum(self.get_num_tokens())

    def get_absorbed_info(self) -> Tuple[int, int, int]:
        (num_prefill, num_extend, num_decode), (prefill_tokens, extend_tokens, _) = self.get_num_sequences(), self.get_num_tokens()
        return num_prefill + num_extend, prefill_tokens + extend_tokens, num_decode

    def update_max_seq_info(self, max_context_length: int, max_blocks_per_seq: int, block_offset_multiplier: int, max_batch_size: int) -> None:
        self._batch_info[6:10] = torch.tensor([max_context_length, max_blocks_per_seq, block_offset_multiplier, max_batch_size], dtype=self._batch_info.dtype)

    def get_max_blocks_per_seq(self) -> int:
        return int(self._batch_info[7])

    def update_tokens_gather_info(self, num_tokens_to_gather: int, gather_required: bool) -> None:
        self._batch_info[10:12] = torch.tensor([num_tokens_to_gather, int(gather_required)], dtype=self._batch_info.dtype)


class SequenceInfo:
    def __init__(self, max_seq_len: int, max_batch_size: int, max_num_tokens: int, tokens_per_block: Optional[int] = None,
                 vocab_size_padded: Optional[int] = None):
        self.max_seq_len = max_seq_len
        self.max_batch_size = max(2, max_batch_size)
        self.tokens_per_block = tokens_per_block or max_seq_len
        self.max_blocks_per_seq = math.ceil(max_seq_len / self.tokens_per_block)
        self.max_num_tokens = max_num_tokens
        self.vocab_size_padded = vocab_size_padded
        self.max_num_state_slots = max_batch_size + 1
        self._num_blocks = None
        self._use_flattened_layout = False
        self.batch_info = BatchInfo()
        b, t = self.max_batch_size, max_num_tokens
        specs = [
            ("input_ids", t, torch.int), ("position_ids", t, torch.long), ("input_pos", b, torch.int),
            ("cu_seqlen", b + 1, torch.int), ("cache_loc", t, torch.int), ("cu_num_pages", b + 1, torch.int),
            ("last_page_len", b, torch.int), ("slot_idx", b, torch.long), ("any_prefill_use_initial_states", 1, torch.bool),
            ("max_seq_info", 4, torch.int), ("seq_len", b, torch.int), ("seq_len_with_cache", b, torch.int),
            ("use_initial_states", b, torch.bool), ("extra_page_per_seq", b, torch.int), ("token_gather_indices", t, torch.long),
        ]
        self._specs = {name: (n, dt) for name, n, dt in specs}
        self._host = {name: torch.zeros(n, dtype=dt) for name, n, dt in specs}
        self._device = {name: torch.zeros(n, dtype=dt) for name, n, dt in specs}
        self._lengths = {name: 0 for name in self._host}
        self._available_args = set(self._host) | {f"{n}_host" for n in self._host} | {"batch_info_host"}
        self._active_args = ("input_ids", "position_ids")
        self._shapeable_args = {"input_ids", "position_ids"}

    @property
    def device(self) -> torch.device:
        return self._device["input_ids"].device

    @property
    def available_args(self):
        return self._available_args

    @property
    def named_args(self) -> Dict[str, torch.Tensor]:
        return {name: self.get_arg(name) for name in self._active_args}

    @property
    def num_sequences(self) -> int:
        return self.batch_info.get_total_num_sequences()

    @property
    def total_num_tokens(self) -> int:
        return self.batch_info.get_total_num_tokens()

    @property
    def num_blocks(self) -> int:
        assert self._num_blocks is not None, "num_blocks not set yet"
        return self._num_blocks

    def unflatten(self, tnsr: torch.Tensor) -> torch.Tensor:
        total = self.total_num_tokens
        if not self._use_flattened_layout or self.batch_info.is_generate_only():
            bs = self.num_sequences
            return tnsr[:total].view(bs, total // bs, *tnsr.shape[1:])
        return tnsr[:total].view(1, total, *tnsr.shape[1:])

    def get_arg(self, name: str, truncate: Optional[bool] = None, unflatten: Optional[bool] = None) -> torch.Tensor:
        if name == "batch_info_host":
            return self.batch_info.serialize()
        is_host = name.endswith("_host")
        name = name.removesuffix("_host")
        arg = self._host[name] if is_host else self._device[name]
        if truncate:
            arg = arg[: self._lengths[name]]
        if unflatten is True or (unflatten is None and name in self._shapeable_args):
            arg = self.unflatten(arg)
        return arg

    def update_cache_information(self, num_blocks: int, block_offset_multiplier: int = 0) -> None:
        self._num_blocks = num_blocks
        self.batch_info.update_max_seq_info(self.max_seq_len, self.max_blocks_per_seq, block_offset_multiplier, self.max_batch_size)
        capacity = self.max_batch_size * self.max_blocks_per_seq + 1
        if capacity > self._specs["cache_loc"][0]:
            self._specs["cache_loc"] = (capacity, torch.int)
            self._host["cache_loc"] = torch.zeros(capacity, dtype=torch.int)
            self._device["cache_loc"] = torch.zeros(capacity, dtype=torch.int)

    def activate_arg(self, arg_name: str) -> bool:
        assert arg_name in self.available_args, f"{arg_name=} not found in {self.available_args}"
        self._use_flattened_layout = True
        if arg_name not in self._active_args:
            self._active_args += (arg_name,)
            return True
        return False

    def _required(self, name: str) -> bool:
        return name in self._active_args or f"{name}_host" in self._active_args

    def _stage(self, name: str, data) -> None:
        if data is None:
            assert not self._required(name), f"data is required for {name}"
            return
        data = torch.as_tensor(data, dtype=self._specs[name][1]).flatten()
        assert data.numel() <= self._specs[name][0], f"Data too large for buffer '{name}'"
        self._host[name][: data.numel()] = data
        self._lengths[name] = data.numel()

    def nest_sequences(self, input_ids: Union[Sequence[int], torch.Tensor], cu_seqlen: Sequence[int], input_pos: Union[Sequence[int], int],
                       batch_info: Optional[Sequence[int]] = None, cache_loc: Optional[Sequence[int]] = None,
                       cu_num_pages: Optional[Sequence[int]] = None, extra_page_per_seq: Optional[Sequence[int]] = None,
                       slot_idx: Optional[Sequence[int]] = None, gather_context_logits: bool = False) -> None:
        self._stage("cu_seqlen", cu_seqlen)
        csl = self.get_arg("cu_seqlen_host", truncate=True)
        seq_len = csl[1:] - csl[:-1]
        self._stage("seq_len", seq_len)
        if batch_info is None:
            num_decode = int((seq_len.flip(0) == 1).cumprod(0).sum())
            batch_info = [len(seq_len) - num_decode, int(seq_len.sum()) - num_decode, 0, 0, num_decode, num_decode]
        self.batch_info.update(batch_info)
        if isinstance(input_pos, int):
            input_pos = [input_pos] * self.num_sequences
        self._stage("input_pos", input_pos)
        pos = self.get_arg("input_pos_host", truncate=True)
        self._stage("input_ids", input_ids)
        self._stage("position_ids", torch.cat([torch.arange(p, p + s) for p, s in zip(pos.tolist(), seq_len.tolist())]))
        assert (cache_loc is None) == (cu_num_pages is None), "Both must be provided together!"
        self._stage("cache_loc", cache_loc)
        self._stage("cu_num_pages", cu_num_pages)
        self._stage("last_page_len", (pos + seq_len - 1) % self.tokens_per_block + 1)
        self._stage("slot_idx", slot_idx)
        self._stage("extra_page_per_seq", extra_page_per_seq)
        self._stage("seq_len_with_cache", pos + seq_len)
        self._stage("use_initial_states", pos > 0)
        num_prefill = self.batch_info.get_num_sequences()[0]
        total = self.total_num_tokens
        if gather_context_logits or num_prefill == 0:
            self._stage("token_gather_indices", torch.arange(total))
            self.batch_info.update_tokens_gather_info(total, False)
        else:
            prefill_tokens = self.batch_info.get_num_tokens()[0]
            indices = torch.cat([csl[1 : num_prefill + 1].long() - 1, torch.arange(prefill_tokens, total)])
            self._stage("token_gather_indices", indices)
            self.batch_info.update_tokens_gather_info(len(indices), True)
        for name, host in self._host.items():
            self._device[name].copy_(host)
