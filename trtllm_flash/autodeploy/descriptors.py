"""One AutoDeploy ``AttentionDescriptor`` per op family, generated from our own :class:`OpDescriptor`.

Nothing about a family is restated here: each class method forwards to the family's descriptor
(:func:`trtllm_flash.ops.interface.all_descriptors`) and translates names and cache specs
(:mod:`.metadata`, :mod:`.resources`). Registered with ``AttentionRegistry`` under the descriptor's own
name (``trtllm_flash_attention``, ``trtllm_flash_ssm``, ``trtllm_flash_causal_conv``,
``trtllm_flash_delta_rule``), which the YAML selects with ``insert_cached_*: {backend: <name>}``.

Method set and semantics mirror ``AttentionDescriptor`` in ``AD/custom_ops/attention_interface.py``
(stored version 46243425432, RH-3): ``get_attention_layout``, ``get_num_qkv_args``,
``get_source_attention_op``, ``get_cached_attention_op``, ``get_standard_metadata_args``,
``get_prepare_extra_metadata_info``, ``get_cache_initializers(source_attn_node, cache_config)``,
``get_constants``; the registry's ``register(name)`` asserts the name is new, ``has(name)`` guards
re-registration. The pattern follows ``AD/custom_ops/fla/fla_backend_delta.py`` @ 0a70ba33.
"""
from __future__ import annotations

from typing import Dict, List, Type

from trtllm_flash.autodeploy.metadata import prepare_op_for, split_metadata
from trtllm_flash.autodeploy.resources import resource_handlers
from trtllm_flash.autodeploy.upstream import AttentionDescriptor, AttentionRegistry
from trtllm_flash.ops.interface import OpDescriptor, all_descriptors


def make_attention_descriptor(ours: Type[OpDescriptor]) -> Type[AttentionDescriptor]:
    """An ``AttentionDescriptor`` subclass that answers AutoDeploy from ``ours``."""
    native, derived = split_metadata(list(ours.standard_metadata()))

    class Descriptor(AttentionDescriptor):
        op_descriptor = ours

        @classmethod
        def get_attention_layout(cls) -> str:
            return "bsnd"

        @classmethod
        def get_num_qkv_args(cls) -> int:
            return ours.num_inputs()

        @classmethod
        def get_source_attention_op(cls):
            return ours.source_op()

        @classmethod
        def get_cached_attention_op(cls):
            return ours.cached_op()

        @classmethod
        def get_standard_metadata_args(cls) -> List[str]:
            return list(native)

        @classmethod
        def get_prepare_extra_metadata_info(cls, any_source_attn_node):
            return prepare_op_for(derived)

        @classmethod
        def get_cache_initializers(cls, source_attn_node, cache_config):
            return resource_handlers(ours.cache_specs(source_attn_node), cache_config)

        @classmethod
        def get_constants(cls, source_attn_node) -> list:
            return list(ours.constants(source_attn_node))

    name = "".join(part.title() for part in ours.name.split("_"))
    Descriptor.__name__ = Descriptor.__qualname__ = f"{name}AutoDeployDescriptor"
    Descriptor.__doc__ = f"AutoDeploy face of :class:`{ours.__module__}.{ours.__name__}` (backend ``{ours.name}``)."
    return Descriptor


def register_attention_descriptors() -> Dict[str, Type[AttentionDescriptor]]:
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
        registered[name] = AttentionRegistry.register(name)(make_attention_descriptor(ours))
    return registered
