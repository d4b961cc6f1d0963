"""Upstream's cache-insertion transforms (``insert_cached_attention`` and the keys sharing its class:
``insert_cached_ssm_attention``, ``insert_cached_causal_conv``, ``insert_cached_delta_rule``), with the
generation differences passed in by each stand-in.

Mirrors NVIDIA/TensorRT-LLM ``tensorrt_llm/_torch/auto_deploy/transform/library/kvcache.py`` at commit
01d93fe (stored version 36592151913, the ``CacheConfig`` generation) and ``ssm_cache.py`` at commit
0249976 (stored version 1148547022: the SSM / causal-conv keys are plain subclasses); the
resource-handler generations as described in /work/shared/research/autodeploy_api_notes.md §3.3:

* source nodes: every node whose target is the descriptor's source op packet or one of its overloads;
  none -> ``TransformInfo(skipped=True, num_matches=0, is_clean=True, has_valid_shapes=True)``;
* ``CacheConfig`` generation only: ``cache_config = self.config.cache_config | factory.get_cache_config()``
  and ``assert descriptor.is_paged()`` whenever ``cm.info.is_paged``; resource-handler generations hand
  ``cm.kv_cache_config`` to ``get_cache_initializers``;
* standard metadata: ``_add_or_retrieve_input`` per name of ``get_standard_metadata_args()`` (placeholder
  + ``activate_arg``), once for all nodes;
* extra metadata: ``get_prepare_extra_metadata_info(first source node)``; the op's schema arguments whose
  names are in ``cm.info.available_args`` become inputs (others are silently dropped), then the constants;
  one call right after the last placeholder, ``operator.getitem`` per output;
* per source node ``idx``: ``qkv = node.args[:get_num_qkv_args()]``; each cache initialiser registered
  with the interface (``cm.add_cache(f"{k}_{idx}", fn)`` / ``name = cm.add_resource(k, handler)``) and
  turned into a graph input of that name; ``CacheConfig`` generation: global buffers
  (``get_global_buffer_initializers``) registered once by key; constants from ``get_constants(node)``;
* the cached op call replaces the node, arguments in this order: ``CacheConfig`` generation (commit
  01d93fe) ``(*qkv, custom_mask, *meta_std, *meta_extra, *caches, *buffers, *constants)`` with
  ``custom_mask = node.kwargs.get("attn_mask")`` (None for our ops; the method
  ``_get_custom_mask_for_attn_node`` marks this); resource-handler generations ``(*qkv, *meta_std,
  *meta_extra, *caches, *constants)``.
Custom-mask marker nodes, MLA, sliding-window KV pools and shared-KV layers are not mirrored.
"""
from __future__ import annotations

import operator
from typing import List, Optional

from pydantic import Field
from torch.fx import Node

from .transform_core import TransformConfig, TransformInfo


def is_op(node: Node, op_packet) -> bool:
    return node.op == "call_function" and (node.target is op_packet or getattr(node.target, "overloadpacket", None) is op_packet)


def add_graph_input(gm, name: str) -> Node:
    last = [n for n in gm.graph.nodes if n.op == "placeholder"][-1]
    with gm.graph.inserting_after(last):
        return gm.graph.placeholder(name)


def make_insert_transforms(base, attention_registry, cache_config_class: Optional[type]):
    """``{key: class}`` of the insertion transforms on ``base`` (the generation's ``BaseTransform``);
    ``cache_config_class`` set = the ``CacheConfig`` generation's behaviour, None = resource handlers."""

    fields = {"backend": (Optional[str], Field(default=None))}
    if cache_config_class is not None:
        fields["cache_config"] = (cache_config_class, Field(default_factory=cache_config_class))
    from pydantic import create_model

    config_class = create_model("InsertCachedAttentionConfig", __base__=TransformConfig, **fields)

    class InsertCachedAttention(base):
        @classmethod
        def get_config_class(cls):
            return config_class

        @property
        def attn_descriptor(self):
            return attention_registry.get(self.config.backend)

        def _prepare_meta(self, gm, cm, descriptor, first) -> List[Node]:
            op, num_out, const_args = descriptor.get_prepare_extra_metadata_info(first)
            if op is None or num_out == 0:
                return []
            inputs = [self._add_or_retrieve_input(gm, cm, a.name) for a in op._schema.arguments if a.name in cm.info.available_args]
            last = [n for n in gm.graph.nodes if n.op == "placeholder"][-1]
            with gm.graph.inserting_before(last.next):
                call = gm.graph.call_function(op, args=(*inputs, *const_args))
                return [gm.graph.call_function(operator.getitem, args=(call, i)) for i in range(num_out)]

        def _apply(self, gm, cm, factory, shared_config):
            descriptor = self.attn_descriptor
            nodes = [n for n in gm.graph.nodes if is_op(n, descriptor.get_source_attention_op())]
            if not nodes:
                return gm, TransformInfo(skipped=True, num_matches=0, is_clean=True, has_valid_shapes=True)
            if cache_config_class is not None:
                cache_config = self.config.cache_config | factory.get_cache_config()
                if cm.info.is_paged:
                    assert descriptor.is_paged(), "Paged sequence info requires paged attention op."
            else:
                cache_config = cm.kv_cache_config
            meta_std = [self._add_or_retrieve_input(gm, cm, name) for name in descriptor.get_standard_metadata_args()]
            meta_extra = self._prepare_meta(gm, cm, descriptor, nodes[0])
            buffers = {}
            for idx, node in enumerate(nodes):
                qkv = node.args[: descriptor.get_num_qkv_args()]
                caches = []
                for key, initializer in descriptor.get_cache_initializers(node, cache_config).items():
                    if cache_config_class is not None:
                        name = f"{key}_{idx}"
                        cm.add_cache(name, initializer)
                    else:
                        name = cm.add_resource(key, initializer)
                    caches.append(add_graph_input(gm, name))
                node_buffers = []
                if cache_config_class is not None:
                    for key, initializer in descriptor.get_global_buffer_initializers(node).items():
                        if key not in buffers:
                            cm.add_cache(key, initializer)
                            buffers[key] = add_graph_input(gm, key)
                        node_buffers.append(buffers[key])
                constants = descriptor.get_constants(node)
                if cache_config_class is not None:
                    args = (*qkv, self._get_custom_mask_for_attn_node(node), *meta_std, *meta_extra, *caches, *node_buffers, *constants)
                else:
                    args = (*qkv, *meta_std, *meta_extra, *caches, *constants)
                with gm.graph.inserting_before(node):
                    cached = gm.graph.call_function(descriptor.get_cached_attention_op(), args=args)
                node.replace_all_uses_with(cached)
                gm.graph.erase_node(node)
            gm.recompile()
            return gm, TransformInfo(skipped=False, num_matches=len(nodes), is_clean=False, has_valid_shapes=False)

    if cache_config_class is not None:

        def _get_custom_mask_for_attn_node(self, attn_node):
            mask = attn_node.kwargs.get("attn_mask")
            return mask if isinstance(mask, Node) else None

        InsertCachedAttention._get_custom_mask_for_attn_node = _get_custom_mask_for_attn_node

    keys = ("insert_cached_attention", "insert_cached_ssm_attention", "insert_cached_causal_conv", "insert_cached_delta_rule")
    return InsertCachedAttention, {key: type(f"Insert_{key}", (InsertCachedAttention,), {}) for key in keys}
