"""STAND-IN of ``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py``, the ``CacheConfig``
generation: NVIDIA/TensorRT-LLM stored version 18438348684 of the code index (55,558 chars), the
generation docs/AUTODEPLOY.md finds in the 1.2.x line. Behaviour mirrored (bodies reduced):

* ``CacheConfig`` (pydantic, ``extra="forbid"``): ``dtype`` / ``mamba_dtype`` (default None),
  ``delta_dtype`` (default float32), strings coerced to ``torch.dtype``; ``a | b`` takes each field from
  ``a`` unless it is None (falsy), else from ``b``;
* ``SequenceInfo(max_seq_len=1, max_batch_size=1, page_size=0, max_num_tokens=None,
  vocab_size_padded=None)``: ``page_size`` 0 means ``max_seq_len``; ``max_state_slots = max_batch_size + 1``;
  ``max_num_tokens = min(max_batch_size * (max_seq_len + 1), given)``; ``num_pages =
  max(max_batch_size, max_num_tokens // page_size + (overflow) * max_batch_size)``; fields (no
  ``max_seq_info``): input_ids, position_ids, seq_len, cu_seqlen, input_pos, pages_per_seq,
  cu_num_pages, seq_len_with_cache, last_page_len, slot_idx, use_initial_states, batch_info (3 ints),
  cache_loc (``((max_seq_len + 1) // page_size + 1) * max_batch_size``); ``is_paged = page_size <
  max_seq_len``; storage / activation /
  ``_get_arg`` / ``nest_sequences`` as ``ad_standin.sequence_info_core``;
* ``GetCacheCallable``: ``fn(sequence_info) -> Tensor``; ``AttentionDescriptor`` with abstract
  ``is_paged``, ``get_attention_layout``, ``get_num_qkv_args``, ``get_source_attention_op``,
  ``get_cached_attention_op``, ``get_standard_metadata_args``, ``get_cache_initializers(source_attn_node,
  cache_config)``; defaults ``get_prepare_extra_metadata_info -> (None, 0, [])``,
  ``get_global_buffer_initializers -> {}`` (buffers go between caches and constants),
  ``get_constants -> []``, ``get_host_prepare_metadata_function -> None``; no ``ResourceHandler``, no
  ``resolve_cache_dtype``;
* ``AttentionRegistry``: ``register`` asserts a new name, ``get`` asserts a known one, ``has``.
"""
from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Protocol

import torch
from ad_standin.sequence_info_core import SequenceInfoCore
from pydantic import BaseModel, ConfigDict, Field, field_validator
from ad_standin.attention_registry import AttentionRegistry  # noqa: F401  (upstream's name, re-exported)


class CacheConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")
    dtype: Optional[torch.dtype] = Field(default=None)
    mamba_dtype: Optional[torch.dtype] = Field(default=None)
    delta_dtype: Optional[torch.dtype] = Field(default=torch.float32)

    @field_validator("dtype", "mamba_dtype", "delta_dtype", mode="before")
    @classmethod
    def _coerce_dtype(cls, value):
        if isinstance(value, str):
            dtype = getattr(torch, value, None)
            assert isinstance(dtype, torch.dtype), f"Invalid {dtype=}"
            return dtype
        return value

    def __or__(self, other: "CacheConfig") -> "CacheConfig":
        if not isinstance(other, CacheConfig):
            raise NotImplementedError(f"Cannot combine CacheConfig with {type(other)}")
        return CacheConfig(**{name: getattr(self, name) or getattr(other, name) for name in type(self).model_fields})


class SequenceInfo(SequenceInfoCore):
    def __init__(self, max_seq_len: int = 1, max_batch_size: int = 1, page_size: int = 0,
                 max_num_tokens: Optional[int] = None, vocab_size_padded: Optional[int] = None):
        self.max_seq_len = max_seq_len
        self.max_batch_size = max_batch_size
        self.page_size = page_size if page_size > 0 else max_seq_len
        self.page_size_for_metadata = self.page_size
        self.vocab_size_padded = vocab_size_padded
        adjusted = max_seq_len + 1
        self.max_state_slots = max_batch_size + 1
        self.max_num_tokens = max_batch_size * adjusted
        if max_num_tokens is not None and max_num_tokens > 0:
            self.max_num_tokens = min(self.max_num_tokens, max_num_tokens)
        overflow = self.max_num_tokens / max_batch_size % self.page_size > 0
        self.num_pages = max(max_batch_size, self.max_num_tokens // self.page_size + overflow * max_batch_size)
        b, t = max_batch_size, self.max_num_tokens
        self._init_buffers([
            ("input_ids", t, torch.int), ("position_ids", t, torch.long), ("seq_len", b, torch.int),
            ("cu_seqlen", b + 1, torch.int), ("input_pos", b, torch.int), ("pages_per_seq", b, torch.int),
            ("cu_num_pages", b + 1, torch.int), ("seq_len_with_cache", b, torch.int), ("last_page_len", b, torch.int),
            ("slot_idx", b, torch.long), ("use_initial_states", b, torch.bool), ("batch_info", 3, torch.int),
            ("logits_gather_indices", t, torch.long), ("logits_gather_info", 2, torch.int),
            ("cache_loc", (adjusted // self.page_size + 1) * b, torch.int),
        ])

    @property
    def is_paged(self) -> bool:
        return self.page_size < self.max_seq_len


class GetCacheCallable(Protocol):
    def __call__(self, sequence_info: SequenceInfo) -> torch.Tensor: ...


CacheInitializerDict = Dict[str, GetCacheCallable]
BufferInitializerDict = Dict[str, GetCacheCallable]


class AttentionDescriptor(ABC):
    @classmethod
    @abstractmethod
    def is_paged(cls) -> bool:
        """Whether the op uses paged caches."""

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
        """(*qkv, *meta_std, *meta_extra, *caches, *buffers, *constants)."""

    @classmethod
    @abstractmethod
    def get_standard_metadata_args(cls) -> List[str]:
        """SequenceInfo names, matched by name."""

    @classmethod
    def get_prepare_extra_metadata_info(cls, any_source_attn_node):
        return None, 0, []

    @classmethod
    @abstractmethod
    def get_cache_initializers(cls, source_attn_node, cache_config: CacheConfig) -> CacheInitializerDict:
        """Cache arg name -> fn(SequenceInfo) -> Tensor."""

    @classmethod
    def get_global_buffer_initializers(cls, source_attn_node) -> BufferInitializerDict:
        return {}

    @classmethod
    def get_constants(cls, source_attn_node) -> list:
        return []

    @classmethod
    def get_host_prepare_metadata_function(cls):
        return None
