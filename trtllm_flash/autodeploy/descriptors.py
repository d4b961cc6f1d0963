"""One AutoDeploy ``AttentionDescriptor`` per op family, generated from our own :class:`OpDescriptor`.

Nothing about a family is restated here: each class method forwards to the family's descriptor
(:func:`trtllm_flash.ops.interface.all_descriptors`) and translates names and cache specs
(:mod:`.metadata`, :mod:`.generations`). Registered with ``AttentionRegistry`` under the descriptor's own
name (``trtllm_flash_attention``, ``trtllm_flash_ssm``, ``trtllm_flash_causal_conv``,
``trtllm_flash_delta_rule``), which the YAML selects with ``insert_cached_*: {backend: <name>}``.

The class methods common to every supported generation are defined here (``get_attention_layout``,
``get_num_qkv_args``, ``get_source_attention_op``, ``get_cached_attention_op``,
``get_standard_metadata_args``, ``get_constants``); the generation's mapping module
(:mod:`.generations`) adds the rest (``get_cache_initializers``, ``get_prepare_extra_metadata_info``,
``is_paged`` where abstract). The registry's ``register(name)`` asserts the name is new, ``has(name)``
guards re-registration. The pattern follows ``AD/custom_ops/fla/fla_backend_delta.py`` @ 0a70ba33.
"""
from __future__ import annotations

from types import ModuleType
from typing import Callable, Dict, Type

import trtllm_flash.autodeploy.metadata  # noqa: F401  (defines the page-table prepare ops)
from trtllm_flash.autodeploy.metadata import split_metadata
from trtllm_flash.autodeploy.upstream import AttentionDescriptor, AttentionRegistry
from trtllm_flash.ops.interface import OpDescriptor, all_descriptors


def without_mask_argument(op: Callable, num_inputs: int) -> Callable:
    """``op`` called with AutoDeploy's custom-mask argument (position ``num_inputs``, right after the
    source op's inputs) taken out; our cached ops take no mask, so a real mask is refused."""

    def cached_op(*args):
        if args[num_inputs] is not None:
            raise ValueError(f"{op}: trtllm-flash's cached ops take no custom attention mask")
        return op(*args[:num_inputs], *args[num_inputs + 1 :])

    name = str(op).replace(".", "_") + "_without_mask"
    cached_op.__name__ = cached_op.__qualname__ = name
    return cached_op


def make_attention_descriptor(ours: Type[OpDescriptor], mapping: ModuleType, drop_mask_argument: bool = False) -> Type[AttentionDescriptor]:
    """An ``AttentionDescriptor`` subclass that answers AutoDeploy from ``ours`` (``mapping``: the
    installed generation's mapping module; ``drop_mask_argument``: the insertion transform passes a
    custom mask after the inputs, see :mod:`.generations`)."""
    native, derived = split_metadata(list(ours.standard_metadata()))
    cached = without_mask_argument(ours.cached_op(), ours.num_inputs()) if drop_mask_argument else ours.cached_op()
    common = {
        "get_attention_layout": lambda cls: "bsnd",
        "get_num_qkv_args": lambda cls: ours.num_inputs(),
        "get_source_attention_op": lambda cls: ours.source_op(),
        "get_cached_attention_op": lambda cls: cached,
        "get_standard_metadata_args": lambda cls: list(native),
        "get_constants": lambda cls, source_attn_node: list(ours.constants(source_attn_node)),
    }
    namespace = {method: classmethod(fn) for method, fn in common.items()}
    namespace.update(mapping.descriptor_methods(ours, derived))
    name = "".join(part.title() for part in ours.name.split("_")) + "AutoDeployDescriptor"
    namespace.update(
        op_descriptor=ours,
        __module__=__name__,
        __qualname__=name,
        __doc__=f"AutoDeploy face of :class:`{ours.__module__}.{ours.__name__}` (backend ``{ours.name}``).",
    )
    return type(name, (AttentionDescriptor,), namespace)


def register_attention_descriptors(mapping: ModuleType, drop_mask_argument: bool = False) -> Dict[str, Type[AttentionDescriptor]]:
    """Register every op family not registered yet; returns backend name -> descriptor class.

    A name that is already taken by a class that is not ours raises (we never shadow upstream).
    """
    registered = {}
    for name, ours in sorted(all_descriptors().items()):
        if AttentionRegistry.has(name):
            existing = AttentionRegistry.get(name)
            if getattr(existing, "op_descriptor", None) is not ours:
                raise RuntimeError(f"AutoDeploy attention backend {name!r} is already registered by {existing.__qualname__}")
            registered[name] = existing
            continue
        registered[name] = AttentionRegistry.register(name)(make_attention_descriptor(ours, mapping, drop_mask_argument))
    return registered
