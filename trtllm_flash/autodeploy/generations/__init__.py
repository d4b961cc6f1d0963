"""Which AutoDeploy API generation is installed, told from the imported module's features (never from a
version string), and the adapter's thin mapping module for each generation it supports.

=================== ======================================================= =============================
generation          features of ``AD/custom_ops/attention_interface.py``    mapping module
=================== ======================================================= =============================
``cache_config``    ``CacheConfig``; closure cache initialisers              :mod:`.cache_config`
                    ``fn(SequenceInfo) -> Tensor``; abstract ``is_paged``;
                    ``get_standard_metadata_args`` +
                    ``get_prepare_extra_metadata_info``; 3-int
                    ``batch_info``; no ``max_seq_info``
``resource_handlers`` ``ResourceHandler`` classes; 3-int ``batch_info``;     :mod:`.resource_handlers`
                    ``SequenceInfo`` with ``max_seq_info``; no ``BatchInfo``
``batch_info``      ``ResourceHandler`` classes and ``BatchInfo`` (12-int      :mod:`.batch_info`
                    ``batch_info_host``)
=================== ======================================================= =============================

Refused with :class:`UnsupportedAutoDeployVersion`: the oldest generation (``get_prepare_metadata_op``, no
``get_standard_metadata_args``) and the first resource-handler revisions (no ``max_seq_info``: upstream
silently drops prepare-op arguments it does not know, so our page-table op would fail only at the first
forward). Which release ships which generation: docs/AUTODEPLOY.md.

One more feature is read from ``AD/transform/library/kvcache.py``: whether the cache-insertion transform
passes a custom attention mask right after the source op's inputs (``_get_custom_mask_for_attn_node``,
seen at commit 01d93fe); then :mod:`..descriptors` drops that argument before calling our cached op.
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Dict, Optional, Tuple

#: supported generation -> its mapping module (relative to this package)
SUPPORTED: Dict[str, str] = {
    "cache_config": ".cache_config",
    "resource_handlers": ".resource_handlers",
    "batch_info": ".batch_info",
}


class UnsupportedAutoDeployVersion(RuntimeError):
    """The installed AutoDeploy is of a generation the adapter has no mapping for."""


@dataclass(frozen=True)
class Features:
    """What :func:`detect` looks at (each a plain attribute / source check of the imported module)."""

    cache_config: bool
    resource_handlers: bool
    batch_info_class: bool
    standard_metadata: bool
    prepare_metadata_op: bool
    max_seq_info: Optional[bool]  # None: SequenceInfo's source is not available
    custom_mask_arg: bool

    def describe(self) -> str:
        shown = {
            "CacheConfig": self.cache_config,
            "ResourceHandler": self.resource_handlers,
            "BatchInfo": self.batch_info_class,
            "get_standard_metadata_args": self.standard_metadata,
            "get_prepare_metadata_op": self.prepare_metadata_op,
            "SequenceInfo.max_seq_info": self.max_seq_info,
            "custom mask argument": self.custom_mask_arg,
        }
        return ", ".join(f"{name}={'?' if value is None else ('yes' if value else 'no')}" for name, value in shown.items())


def features(attention_interface: ModuleType) -> Features:
    """The features of an imported ``AD/custom_ops/attention_interface.py`` (and of the package's
    ``transform/library/kvcache.py``)."""
    descriptor = attention_interface.AttentionDescriptor
    package = attention_interface.__name__.rsplit(".custom_ops.", 1)[0]
    kvcache = importlib.import_module(f"{package}.transform.library.kvcache")
    try:
        max_seq_info: Optional[bool] = "max_seq_info" in inspect.getsource(attention_interface.SequenceInfo)
    except (OSError, TypeError):
        max_seq_info = None
    return Features(
        cache_config=hasattr(attention_interface, "CacheConfig"),
        resource_handlers=hasattr(attention_interface, "ResourceHandler"),
        batch_info_class=hasattr(attention_interface, "BatchInfo"),
        standard_metadata=hasattr(descriptor, "get_standard_metadata_args"),
        prepare_metadata_op=hasattr(descriptor, "get_prepare_metadata_op"),
        max_seq_info=max_seq_info,
        custom_mask_arg=hasattr(kvcache.InsertCachedAttention, "_get_custom_mask_for_attn_node"),
    )


def generation_of(found: Features) -> Optional[str]:
    """The supported generation with these features, or None."""
    if found.prepare_metadata_op or not found.standard_metadata:
        return None
    if found.resource_handlers and found.batch_info_class:
        return "batch_info"
    if found.resource_handlers:
        return "resource_handlers" if found.max_seq_info else None
    if found.cache_config:
        return "cache_config"
    return None


def installed_version() -> str:
    """``tensorrt_llm.__version__`` for messages only (never used to decide anything)."""
    import tensorrt_llm

    return str(getattr(tensorrt_llm, "__version__", "unknown"))


def detect(attention_interface: ModuleType) -> Tuple[str, Features]:
    """The installed generation's name and features, or :class:`UnsupportedAutoDeployVersion` naming the
    installed version, what was detected and what is supported."""
    found = features(attention_interface)
    name = generation_of(found)
    if name is None:
        raise UnsupportedAutoDeployVersion(
            f"trtllm-flash cannot register with TensorRT-LLM {installed_version()}: its AutoDeploy API "
            f"({found.describe()}) is not a generation trtllm-flash supports ({', '.join(SUPPORTED)}; "
            "TensorRT-LLM 1.2.x from pip is one, see docs/AUTODEPLOY.md)"
        )
    return name, found


def mapping_module(name: str) -> ModuleType:
    """The mapping module of supported generation ``name``."""
    return importlib.import_module(SUPPORTED[name], __name__)
