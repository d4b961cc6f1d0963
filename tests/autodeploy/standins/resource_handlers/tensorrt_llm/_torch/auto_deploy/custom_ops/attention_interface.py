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
  asserts a new name, ``get`` asserts a known one, ``has``).
"""
import math
from abc import ABC, abstractmethod
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from ad_standin.sequence_info_core import SequenceInfoCore

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "fp8": torch.float8_e4m3fn}


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
