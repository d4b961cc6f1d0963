"""The contract between the op library, the graph transforms, the runtime and the AutoDeploy adapter.

Every token-mixer family (attention, ssm, causal_conv, delta_rule) ships two torch.library ops in the
``torch.ops.trtllm_flash`` namespace and one :class:`OpDescriptor`:

* the **source op** is what the exported graph holds: it takes a padded batch ``[b, s, ...]`` and
  computes every sequence from a zero state;
* the **cached op** is what ``insert_cached_*`` puts in its place. Its arguments are, in this order::

      *inputs            the first ``num_inputs`` args of the source node, unchanged
      *metadata          the tensors named by ``standard_metadata`` (see FLATTENED BATCH below)
      *caches            one tensor per entry of ``cache_specs(node)``, in dict order
      *constants         ``constants(node)``

  It works on the flattened batch and reads and writes its caches in place.

FLATTENED BATCH (AutoDeploy's convention, 3-int ``batch_info_host`` generation)
----------------------------------------------------------------------------
Token tensors arrive as ``[1, T, ...]`` (mixed batch) or ``[B, 1, ...]`` (decode only) and are
treated as ``T = b * s`` flat tokens. Sequences are ordered **prefill first, then decode**:
``num_prefill`` sequences of ``seq_len >= 1`` tokens (a fresh prompt or a chunk continuing a
cached prefix), then ``num_decode`` sequences of exactly one token each that continue their state.

================== ====================== =========================================================
name               dtype / shape          meaning
================== ====================== =========================================================
batch_info_host    int32 [3], CPU         ``[num_prefill, num_prefill_tokens, num_decode]``
cu_seqlen          int32 [N + 1]          cumulative new-token counts over all N sequences
input_pos          int32 [N]              tokens already in the cache before this step
slot_idx           int64 [N]              state slot of each sequence (``< num_slots``)
use_initial_states bool  [N]              ``input_pos > 0`` (prefill continues a cached state)
page_table         int32 [N, max_pages]   physical KV page of each logical page (full attention)
================== ====================== =========================================================

``N = num_prefill + num_decode``. Padded CUDA-graph rows are decode rows with ``input_pos = 0``,
the reserved sentinel slot (``num_slots - 1``) and a page-table row of the sentinel page
(:data:`SENTINEL_PAGE`); they must write nothing into live slots or pages.

Cache layouts (what :class:`PagedKVCache` / :class:`StateCache` allocate):

* paged KV (full attention): ``[num_pages, 2, num_kv_heads, page_size, head_dim]`` ("HND", K then V);
  token at position ``p`` lives in page ``page_table[seq, p // page_size]`` at offset
  ``p % page_size``.
* sliding-window KV: the same layout but a fixed ring of ``window_pages(window, page_size)`` pages per
  state slot: position ``p`` of the sequence in slot ``s`` lives in physical page
  ``s * ring + (p // page_size) % ring``; no page table is used.
* state caches: ``[num_slots, *shape]``; row ``slot_idx[i]`` belongs to sequence ``i``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Literal, Tuple, Union

import torch
from torch.fx import Node

Constant = Union[int, float, str, bool, None]

#: the metadata names a cached op may ask for, in the order the runtime builds them
METADATA_NAMES: Tuple[str, ...] = (
    "batch_info_host",
    "cu_seqlen",
    "input_pos",
    "slot_idx",
    "use_initial_states",
    "page_table",
)

#: physical KV page reserved for padded CUDA-graph rows; the cache manager never hands it out
SENTINEL_PAGE = 0


def window_pages(sliding_window: int, page_size: int) -> int:
    """Pages in the per-slot ring of a sliding-window layer: the window plus one page."""
    return math.ceil(sliding_window / page_size) + 1


@dataclass(frozen=True)
class PagedKVCache:
    """Per-layer attention KV cache.

    ``sliding_window == 0`` means full attention (pages from the shared pool via ``page_table``);
    ``> 0`` means a ring of :func:`window_pages` pages per state slot.
    """

    num_kv_heads: int
    head_dim: int
    dtype: torch.dtype
    sliding_window: int = 0

    def bytes_per_page(self, page_size: int) -> int:
        return 2 * self.num_kv_heads * page_size * self.head_dim * _itemsize(self.dtype)


@dataclass(frozen=True)
class StateCache:
    """Per-sequence recurrent state of shape ``[num_slots, *shape]``.

    ``kind`` tells the AutoDeploy adapter which resource handler to use: ``"conv"``
    (CausalConvResourceHandler, shape ``(conv_dim, d_conv - 1)``), ``"ssm"`` (SSMResourceHandler,
    shape ``(num_heads, head_dim, d_state)``) or ``"state"`` (plain StateResourceHandler).
    """

    shape: Tuple[int, ...]
    dtype: torch.dtype
    kind: Literal["conv", "ssm", "state"] = "state"

    def bytes_per_slot(self) -> int:
        return math.prod(self.shape) * _itemsize(self.dtype)


CacheSpec = Union[PagedKVCache, StateCache]


class OpDescriptor:
    """How to turn one family's source op into its cached op. Subclass per family, register with
    :func:`register_descriptor`, and set the class attributes below; the classmethods are what the
    transforms and the AutoDeploy adapter call. No descriptor keeps state."""

    #: registry name, e.g. ``"trtllm_flash_attention"``
    name: str = ""
    #: the family's transform key in the YAML (``insert_cached_attention``, ...)
    insert_transform: str = ""
    #: the source and cached op names in ``torch.ops.trtllm_flash``
    source_op_name: str = ""
    cached_op_name: str = ""
    #: leading args of the source node passed to the cached op unchanged
    num_input_args: int = 0
    #: names (from :data:`METADATA_NAMES`) the cached op takes after its inputs, in order
    metadata: Tuple[str, ...] = ()

    @classmethod
    def source_op(cls) -> torch._ops.OpOverloadPacket:
        return getattr(torch.ops.trtllm_flash, cls.source_op_name)

    @classmethod
    def cached_op(cls) -> torch._ops.OpOverload:
        return getattr(torch.ops.trtllm_flash, cls.cached_op_name).default

    @classmethod
    def num_inputs(cls) -> int:
        return cls.num_input_args

    @classmethod
    def standard_metadata(cls) -> List[str]:
        return list(cls.metadata)

    @classmethod
    def cache_specs(cls, source_node: Node) -> Dict[str, CacheSpec]:
        """Cache arg name -> spec, read from the source node's fake tensors (``node.args[i].meta['val']``)."""
        raise NotImplementedError

    @classmethod
    def constants(cls, source_node: Node) -> List[Constant]:
        """Constants appended after the caches, read from the source node's non-tensor args."""
        return []


_DESCRIPTORS: Dict[str, type] = {}


def register_descriptor(cls: type) -> type:
    """Class decorator: register an :class:`OpDescriptor` under ``cls.name`` (names are unique)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _DESCRIPTORS and _DESCRIPTORS[cls.name] is not cls:
        raise ValueError(f"op descriptor {cls.name!r} is already registered by {_DESCRIPTORS[cls.name].__name__}")
    _DESCRIPTORS[cls.name] = cls
    return cls


def get_descriptor(name: str) -> type:
    if name not in _DESCRIPTORS:
        raise KeyError(f"unknown op descriptor {name!r}; registered: {sorted(_DESCRIPTORS)}")
    return _DESCRIPTORS[name]


def all_descriptors() -> Dict[str, type]:
    return dict(_DESCRIPTORS)


def node_arg(node: Node, index: int, name: str, default: Any = None) -> Any:
    """The source node's argument by schema position or keyword (torch.export normalises to positional)."""
    if index < len(node.args):
        return node.args[index]
    return node.kwargs.get(name, default)


def fake_tensor(node: Node, index: int, name: str) -> torch.Tensor:
    """The example (fake) tensor of a source-node argument, for reading shapes and dtypes."""
    arg = node_arg(node, index, name)
    if not isinstance(arg, Node) or "val" not in arg.meta:
        raise ValueError(f"{node.format_node()}: argument {name!r} carries no example tensor (meta['val'])")
    return arg.meta["val"]


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()
