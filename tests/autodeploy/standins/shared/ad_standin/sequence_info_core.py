"""The ``SequenceInfo`` behaviour both generations share, written from NVIDIA/TensorRT-LLM
``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py`` at stored version 18438348684
(55,558 chars, the ``CacheConfig`` generation); the resource-handler revision (stored version
46243425432) keeps these semantics and adds fields (see its stand-in).

* every field lives in a host buffer and a device buffer of fixed capacity (``InputBuffer``); a field is
  written into the host buffer ONLY when it is active (``activate_arg(name)`` or ``activate_arg(name +
  "_host")``) or force-copied, then ``nest_sequences`` copies host -> device once at its end — an inactive
  field's device view keeps stale contents;
* ``available_args`` = every field name and ``<name>_host``; ``activate_arg`` asserts the name is
  available and switches ``input_ids`` / ``position_ids`` to the flattened layout;
* ``_get_arg(name)`` (private) returns the device view, or the host view for ``<name>_host``, at full
  capacity, except ``input_ids`` / ``position_ids`` (and their host views): ``[b, s]`` before the switch
  and for generate-only batches (all ``seq_len == 1``), else ``[1, total_tokens]``;
* ``nest_sequences(input_ids, position_ids=None, seq_len=None, input_pos=None, batch_info=None,
  cu_seqlen=None, cache_loc=None, pages_per_seq=None, cu_num_pages=None, seq_len_with_cache=None,
  last_page_len=None, slot_idx=None, use_initial_states=None, ...)``: ``input_pos`` may be one int for
  every sequence; ``position_ids`` default ``input_pos .. input_pos + seq_len``; ``batch_info`` default
  ``[#seq_len > 1, their tokens, #seq_len == 1]``; ``cu_seqlen`` / ``cu_num_pages`` cumulative sums;
  ``cache_loc`` and ``pages_per_seq`` together or neither; ``last_page_len = (input_pos + seq_len - 1) %
  page_size + 1``; ``use_initial_states`` default ``input_pos > 0``; ``slot_idx`` kept when not given;
  ``logits_gather_indices`` default every token and ``logits_gather_info = [len(indices), 1]``, both
  force-copied.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

TensorSpec = Tuple[str, int, torch.dtype]
SHAPEABLE = ("input_ids", "position_ids", "input_ids_host", "position_ids_host")


class SequenceInfoCore:
    """Subclasses set ``self.page_size_for_metadata`` and call :meth:`_init_buffers` with their field specs."""

    def _init_buffers(self, tensor_specs: List[TensorSpec]) -> None:
        self._specs = {name: (numel, dtype) for name, numel, dtype in tensor_specs}
        self._host = {name: torch.zeros(numel, dtype=dtype) for name, numel, dtype in tensor_specs}
        self._device = {name: torch.zeros(numel, dtype=dtype) for name, numel, dtype in tensor_specs}
        self._lists: Dict[str, List] = {name: [0] * numel for name, numel, _ in tensor_specs}
        self._available_args = set(self._host) | {f"{name}_host" for name in self._host}
        self._active_args: Tuple[str, ...] = ("input_ids", "position_ids")
        self._use_flattened_layout = False

    @property
    def device(self) -> torch.device:
        return self._device["input_ids"].device

    @property
    def available_args(self):
        return self._available_args

    @property
    def named_args(self) -> Dict[str, torch.Tensor]:
        return {name: self._get_arg(name) for name in self._active_args}

    @property
    def seq_len(self) -> List[int]:
        return list(self._lists["seq_len"])

    @property
    def input_pos(self) -> List[int]:
        return list(self._lists["input_pos"])

    @property
    def pages_per_seq(self) -> List[int]:
        return list(self._lists["pages_per_seq"])

    @property
    def total_num_tokens(self) -> int:
        return sum(self.seq_len)

    @property
    def is_generate(self) -> bool:
        return all(s == 1 for s in self.seq_len)

    def activate_arg(self, arg_name: str) -> bool:
        assert arg_name in self.available_args, f"{arg_name=} not found in {self.available_args}"
        self._use_flattened_layout = True
        if arg_name not in self._active_args:
            self._active_args += (arg_name,)
            return True
        return False

    def _shape_for_forward(self, tnsr: torch.Tensor) -> torch.Tensor:
        if not self._use_flattened_layout or self.is_generate:
            bs, sl = len(self.seq_len), self.seq_len[0]
        else:
            bs, sl = 1, self.total_num_tokens
        return tnsr[: self.total_num_tokens].view(bs, sl, *tnsr.shape[1:])

    def _get_arg(self, name: str) -> torch.Tensor:
        arg = self._host[name[: -len("_host")]] if name.endswith("_host") else self._device[name]
        return self._shape_for_forward(arg) if name in SHAPEABLE else arg

    def _store_arg(self, name: str, values: Sequence, force_copy: bool = False) -> None:
        self._lists[name] = list(values)
        if not (name in self._active_args or f"{name}_host" in self._active_args or force_copy):
            return
        numel, dtype = self._specs[name]
        assert len(values) <= numel, f"Data too large for buffer '{name}': {len(values)} > {numel}"
        self._host[name][: len(values)] = torch.tensor(list(values), dtype=dtype)

    def _copy_to_device(self) -> None:
        for name, host in self._host.items():
            self._device[name].copy_(host)

    def nest_sequences(
        self,
        input_ids: Sequence[Sequence[int]],
        position_ids: Optional[Sequence[Sequence[int]]] = None,
        seq_len: Optional[Sequence[int]] = None,
        input_pos: Optional[Union[Sequence[int], int]] = None,
        batch_info: Optional[Sequence[int]] = None,
        cu_seqlen: Optional[Sequence[int]] = None,
        cache_loc: Optional[Sequence[int]] = None,
        pages_per_seq: Optional[Sequence[int]] = None,
        cu_num_pages: Optional[Sequence[int]] = None,
        seq_len_with_cache: Optional[Sequence[int]] = None,
        last_page_len: Optional[Sequence[int]] = None,
        slot_idx: Optional[Sequence[int]] = None,
        use_initial_states: Optional[Sequence[bool]] = None,
        logits_gather_indices: Optional[Sequence[int]] = None,
        logits_gather_info: Optional[Sequence[int]] = None,
    ) -> None:
        seq_len = [len(ids) for ids in input_ids] if seq_len is None else list(seq_len)
        self._store_arg("seq_len", seq_len)
        if input_pos is not None:
            self._store_arg("input_pos", [input_pos] * len(seq_len) if isinstance(input_pos, int) else list(input_pos))
        self._store_arg("input_ids", [i for ids in input_ids for i in ids])
        if position_ids is None:
            position_ids = [list(range(p, p + s)) for p, s in zip(self.input_pos, self.seq_len)]
        self._store_arg("position_ids", [p for ids in position_ids for p in ids])
        if batch_info is None:
            num_prefill = sum(s > 1 for s in seq_len)
            batch_info = [num_prefill, sum(s for s in seq_len if s > 1), len(seq_len) - num_prefill]
        self._store_arg("batch_info", batch_info)
        if cu_seqlen is None:
            cu_seqlen = [0] + torch.tensor(seq_len).cumsum(0).tolist()
        self._store_arg("cu_seqlen", cu_seqlen)
        assert (cache_loc is None) == (pages_per_seq is None), "cache_loc and pages_per_seq must be both None or both set"
        if cache_loc is not None:
            self._store_arg("cache_loc", cache_loc)
            self._store_arg("pages_per_seq", pages_per_seq)
        if cu_num_pages is None:
            cu_num_pages = [0] + torch.tensor(self.pages_per_seq, dtype=torch.long).cumsum(0).tolist()
        self._store_arg("cu_num_pages", cu_num_pages)
        if seq_len_with_cache is None:
            seq_len_with_cache = [p + s for p, s in zip(self.input_pos, self.seq_len)]
        self._store_arg("seq_len_with_cache", seq_len_with_cache)
        if last_page_len is None:
            last_page_len = [(x - 1) % self.page_size_for_metadata + 1 for x in seq_len_with_cache]
        self._store_arg("last_page_len", last_page_len)
        if slot_idx is not None:
            self._store_arg("slot_idx", slot_idx)
        if use_initial_states is None:
            use_initial_states = [p > 0 for p in self.input_pos]
        self._store_arg("use_initial_states", use_initial_states)
        if logits_gather_indices is None:
            logits_gather_indices = list(range(self.total_num_tokens))
        self._store_arg("logits_gather_indices", logits_gather_indices, force_copy=True)
        if logits_gather_info is None:
            logits_gather_info = [len(logits_gather_indices), 1]
        self._store_arg("logits_gather_info", logits_gather_info, force_copy=True)
        self._copy_to_device()
