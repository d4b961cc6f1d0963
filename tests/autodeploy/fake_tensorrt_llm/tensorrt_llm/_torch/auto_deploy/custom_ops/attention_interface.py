"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py``.

Mirrors stored version 46243425432 of that file (71,285 chars, SPDX 2022-2026, the RH-3 generation:
resource handlers + 3-int ``batch_info``); signatures and behaviour copied from its text, bodies reduced:

* ``SequenceInfo(max_seq_len, max_batch_size, tokens_per_block=None, max_num_tokens=None,
  vocab_size_padded=None)``: ``max_num_state_slots = max_batch_size + 1``, ``max_blocks_per_seq``,
  ``update_cache_information(num_blocks, block_offset_multiplier=0)`` (writes ``max_seq_info``),
  ``available_args`` (every buffer name and ``<name>_host``), ``named_args`` lookup by name via
  :meth:`get_arg`, and ``nest_sequences`` computing the same buffers as upstream (same defaults:
  ``batch_info = [#seq_len>1, their tokens, #seq_len==1]``, ``use_initial_states = input_pos > 0``,
  ``cu_num_pages`` from ``pages_per_seq``). Buffers keep their full capacity, as upstream's
  ``InputBuffer.get_view`` does; ``input_ids`` is ``[1, T]`` for mixed and ``[b, 1]`` for
  decode-only batches.
* ``ResourceHandler``, ``KVPagedResourceHandler(num_kv_heads, head_dim, dtype, kv_factor=2,
  kv_layout="HND")``, ``StateResourceHandler(*state_shape, dtype)``, ``SSMResourceHandler(num_heads,
  head_dim, d_state, dtype)``, ``CausalConvResourceHandler(conv_dim, d_conv, dtype)`` with upstream's
  ``allocate`` shapes and ``__eq__``.
* ``AttentionDescriptor`` (same abstract / default class methods), ``AttentionRegistry`` (``register``
  asserts a new name, ``get`` asserts a known one, ``has``).
"""
import math
from abc import ABC, abstractmethod
from typing import Dict, List, Literal, Optional, Sequence, Tuple, Type

import torch

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "fp8": torch.float8_e4m3fn}


class SequenceInfo:
    def __init__(self, max_seq_len: int, max_batch_size: int, tokens_per_block: Optional[int] = None,
                 max_num_tokens: Optional[int] = None, vocab_size_padded: Optional[int] = None):
        self.max_seq_len = max_seq_len
        self.max_batch_size = max_batch_size
        self.tokens_per_block = tokens_per_block or max_seq_len
        self.max_blocks_per_seq = math.ceil(max_seq_len / self.tokens_per_block)
        self.max_num_tokens = max_num_tokens or (max_seq_len + 1) * max_batch_size
        self.vocab_size_padded = vocab_size_padded
        self.max_num_state_slots = max_batch_size + 1
        self._num_blocks = None
        b, t = max_batch_size, self.max_num_tokens
        specs: List[Tuple[str, int, torch.dtype]] = [
            ("input_ids", t, torch.int), ("position_ids", t, torch.long), ("seq_len", b, torch.int),
            ("cu_seqlen", b + 1, torch.int), ("input_pos", b, torch.int), ("pages_per_seq", b, torch.int),
            ("cu_num_pages", b + 1, torch.int), ("seq_len_with_cache", b, torch.int), ("last_page_len", b, torch.int),
            ("slot_idx", b, torch.long), ("use_initial_states", b, torch.bool), ("batch_info", 3, torch.int),
            ("max_seq_info", 4, torch.int), ("cache_loc", t, torch.int),
        ]
        self._buffers: Dict[str, torch.Tensor] = {name: torch.zeros(n, dtype=dt) for name, n, dt in specs}
        self._available_args = set(self._buffers) | {f"{n}_host" for n in self._buffers}
        self._seq_len: List[int] = []

    @property
    def device(self) -> torch.device:
        return self._buffers["input_ids"].device

    @property
    def available_args(self):
        return self._available_args

    @property
    def num_blocks(self) -> int:
        assert self._num_blocks is not None, "num_blocks not set yet"
        return self._num_blocks

    def update_cache_information(self, num_blocks: int, block_offset_multiplier: int = 0) -> None:
        self._num_blocks = num_blocks
        self._store("max_seq_info", [self.max_seq_len, self.max_blocks_per_seq, block_offset_multiplier, self.max_batch_size])

    def _store(self, name: str, values: Sequence) -> None:
        buf = self._buffers[name]
        data = torch.as_tensor(list(values), dtype=buf.dtype)
        assert data.numel() <= buf.numel(), f"Data too large for buffer '{name}'"
        buf[: data.numel()] = data

    def get_arg(self, name: str) -> torch.Tensor:
        """What a graph input named ``name`` receives (upstream ``_get_arg``; host = the CPU copy)."""
        base = name[: -len("_host")] if name.endswith("_host") else name
        arg = self._buffers[base]
        if base in ("input_ids", "position_ids"):
            total = sum(self._seq_len)
            is_generate = all(s == 1 for s in self._seq_len)
            shape = (len(self._seq_len), 1) if is_generate else (1, total)
            return arg[:total].view(*shape)
        return arg

    def nest_sequences(self, input_ids: Sequence[Sequence[int]], input_pos: Sequence[int],
                       cache_loc: Optional[Sequence[int]] = None, pages_per_seq: Optional[Sequence[int]] = None,
                       slot_idx: Optional[Sequence[int]] = None, batch_info: Optional[Sequence[int]] = None) -> None:
        seq_len = [len(ids) for ids in input_ids]
        self._seq_len = seq_len
        self._store("seq_len", seq_len)
        self._store("input_pos", input_pos)
        self._store("input_ids", [i for ids in input_ids for i in ids])
        self._store("position_ids", [p for ip, sl in zip(input_pos, seq_len) for p in range(ip, ip + sl)])
        if batch_info is None:
            num_prefill = sum(s > 1 for s in seq_len)
            batch_info = [num_prefill, sum(s for s in seq_len if s > 1), len(seq_len) - num_prefill]
        self._store("batch_info", batch_info)
        self._store("cu_seqlen", [0] + list(torch.tensor(seq_len).cumsum(0).tolist()))
        if cache_loc is not None:
            self._store("cache_loc", cache_loc)
            self._store("pages_per_seq", pages_per_seq)
            self._store("cu_num_pages", [0] + list(torch.tensor(pages_per_seq).cumsum(0).tolist()))
        swc = [p + s for p, s in zip(input_pos, seq_len)]
        self._store("seq_len_with_cache", swc)
        self._store("last_page_len", [(x - 1) % self.tokens_per_block + 1 for x in swc])
        if slot_idx is not None:
            self._store("slot_idx", slot_idx)
        self._store("use_initial_states", [p > 0 for p in input_pos])


class ResourceHandler(ABC):
    @property
    def is_paged(self) -> bool:
        return False

    @abstractmethod
    def allocate(self, sequence_info: SequenceInfo) -> torch.Tensor:
        """Initialize the resource for the given sequence info."""


class KVPagedResourceHandler(ResourceHandler):
    def __init__(self, num_kv_heads: int, head_dim: int, dtype: torch.dtype, kv_factor: int = 2,
                 kv_layout: Literal["HND", "NHD"] = "HND") -> None:
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.dtype = dtype
        self.kv_factor = kv_factor
        assert kv_factor in [1, 2], f"Invalid kv_factor: {kv_factor}"
        self.kv_layout = kv_layout

    @property
    def is_paged(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return False
        return (self.head_dim, self.dtype, self.kv_factor, self.kv_layout) == (other.head_dim, other.dtype, other.kv_factor, other.kv_layout)

    def allocate(self, sequence_info: SequenceInfo) -> torch.Tensor:
        si = sequence_info
        if self.kv_layout == "HND":
            shape = (si.num_blocks, self.kv_factor, self.num_kv_heads, si.tokens_per_block, self.head_dim)
        else:
            shape = (si.num_blocks, si.tokens_per_block, self.kv_factor, self.num_kv_heads, self.head_dim)
        return torch.empty(*shape, device=si.device, dtype=self.dtype)


class StateResourceHandler(ResourceHandler):
    def __init__(self, *state_shape: int, dtype: torch.dtype) -> None:
        self._state_shape = state_shape
        self.dtype = dtype

    @property
    def state_shape(self) -> Tuple[int, ...]:
        return self._state_shape

    def allocate(self, sequence_info: SequenceInfo) -> torch.Tensor:
        return torch.empty(sequence_info.max_num_state_slots, *self.state_shape, device=sequence_info.device, dtype=self.dtype)

    def __eq__(self, other) -> bool:
        if type(other) is not type(self):
            return False
        return self.state_shape == other.state_shape and self.dtype == other.dtype


class SSMResourceHandler(StateResourceHandler):
    def __init__(self, num_heads: int, head_dim: int, d_state: int, dtype: torch.dtype) -> None:
        self.num_heads, self.head_dim, self.d_state = num_heads, head_dim, d_state
        super().__init__(dtype=dtype)

    @property
    def state_shape(self) -> Tuple[int, int, int]:
        return (self.num_heads, self.head_dim, self.d_state)


class CausalConvResourceHandler(StateResourceHandler):
    def __init__(self, conv_dim: int, d_conv: int, dtype: torch.dtype) -> None:
        self.conv_dim, self.d_conv = conv_dim, d_conv
        super().__init__(dtype=dtype)

    @property
    def state_shape(self) -> Tuple[int, int]:
        return (self.conv_dim, self.d_conv - 1)


ResourceHandlerDict = Dict[str, ResourceHandler]


class AttentionDescriptor(ABC):
    @classmethod
    @abstractmethod
    def get_attention_layout(cls):
        """"bsnd" or "bnsd"."""

    @classmethod
    @abstractmethod
    def get_num_qkv_args(cls) -> int:
        """Leading source-op args passed through."""

    @classmethod
    @abstractmethod
    def get_source_attention_op(cls):
        """The op packet replaced."""

    @classmethod
    @abstractmethod
    def get_cached_attention_op(cls):
        """(*qkv, *meta_std, *meta_extra, *caches, *constants)."""

    @classmethod
    @abstractmethod
    def get_standard_metadata_args(cls) -> List[str]:
        """SequenceInfo names, matched by name."""

    @classmethod
    def get_prepare_extra_metadata_info(cls, any_source_attn_node):
        return None, 0, []

    @classmethod
    @abstractmethod
    def get_cache_initializers(cls, source_attn_node, cache_config) -> ResourceHandlerDict:
        """Cache arg name -> resource handler."""

    @classmethod
    def get_constants(cls, source_attn_node) -> list:
        return []

    @staticmethod
    def resolve_cache_dtype(dtype_config: str, fallback_dtype: torch.dtype) -> torch.dtype:
        if dtype_config == "auto":
            return fallback_dtype
        return _DTYPES[dtype_config]

    @classmethod
    def get_host_prepare_metadata_function(cls):
        return None


class AttentionRegistry:
    _attention_registry: Dict[str, Type[AttentionDescriptor]] = {}

    @classmethod
    def register(cls, kernel_source: str):
        def decorator(attention_cls):
            assert kernel_source not in cls._attention_registry, f"Attention source {kernel_source} already registered."
            cls._attention_registry[kernel_source] = attention_cls
            return attention_cls

        return decorator

    @classmethod
    def get(cls, kernel_source: str):
        assert cls.has(kernel_source), f"Attention source {kernel_source} not registered."
        return cls._attention_registry[kernel_source]

    @classmethod
    def has(cls, kernel_source: str) -> bool:
        return kernel_source in cls._attention_registry
