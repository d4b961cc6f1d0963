"""The resource handlers, ``AttentionDescriptor`` and ``AttentionRegistry`` of
``tensorrt_llm/_torch/auto_deploy/custom_ops/attention_interface.py``, identical in the two generations
that have resource handlers: stored version 46243425432 (RH-3, ``resource_handlers`` stand-in) and
stored version 51834141611 (``BatchInfo``, ``batch_info`` stand-in). Both stand-ins' ``attention_interface``
re-export these names, so upstream's import paths hold (``AttentionRegistry``, the same in every
generation, lives in ``ad_standin.attention_registry``).
"""
from __future__ import annotations  # ``SequenceInfo`` in the signatures is each generation's own class

from abc import ABC, abstractmethod
from typing import Dict, List, Literal, Tuple

import torch
from ad_standin.attention_registry import AttentionRegistry  # noqa: F401  (upstream's name, re-exported)

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "fp8": torch.float8_e4m3fn}


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
