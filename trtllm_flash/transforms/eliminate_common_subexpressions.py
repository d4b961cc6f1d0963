"""eliminate_common_subexpressions (stage post_load_fusion).

Replaces: pure aten nodes that compute the same thing twice — the same op on the same inputs with the
    same constants. Each attention layer's export forward builds its own RoPE ``cos``/``sin`` from
    ``position_ids`` (``arange``, ``pow``, ``mul``, ``cat``, ``cos``, ``sin``, ...): identical subgraphs,
    one per layer, every decode step.
With: the first such node; later duplicates are rewired to it and erased, so the tables are built once
    per forward and shared by every layer.
Only ``aten`` ops (and ``getitem`` on a shared node) are merged, never an op that mutates an input,
draws random numbers or returns uninitialised memory; custom ops (caches, kernels) are left alone.
"""
from __future__ import annotations

import logging
import operator
from typing import Any, Dict, Hashable, Tuple

import torch
from torch.fx import GraphModule, Node
from torch.fx.node import map_arg

from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)

#: aten ops whose result is uninitialised memory: two calls must stay two buffers
_UNINITIALISED = ("empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided")


def _mergeable(node: Node) -> bool:
    if node.op != "call_function":
        return False
    if node.target is operator.getitem:
        return True
    target = node.target
    if not isinstance(target, torch._ops.OpOverload) or target.namespace != "aten":
        return False
    if target._schema.is_mutable or torch.Tag.nondeterministic_seeded in target.tags:
        return False
    return target._schema.name.split("::")[-1] not in _UNINITIALISED


def _hashable(value: Any) -> Hashable:
    """Lists become tuples (recursively) so an argument structure can be part of a dict key; scalars
    carry their type, since ``1 == 1.0 == True`` yet ``x * 1`` and ``x * 1.0`` may differ in dtype."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (bool, int, float)):
        return type(value), value
    return value


def _key(node: Node, representative: Dict[Node, Node]) -> Tuple[Hashable, ...]:
    args = map_arg(node.args, lambda n: representative.get(n, n))
    kwargs = map_arg(node.kwargs, lambda n: representative.get(n, n))
    return node.target, _hashable(args), _hashable(kwargs)


@register_transform("eliminate_common_subexpressions")
class EliminateCommonSubexpressions(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        representative: Dict[Node, Node] = {}
        first: Dict[Tuple[Hashable, ...], Node] = {}
        for node in gm.graph.nodes:
            if not _mergeable(node):
                continue
            key = _key(node, representative)
            try:
                earlier = first.setdefault(key, node)
            except TypeError:  # an unhashable constant argument: leave the node alone
                continue
            if earlier is not node:
                representative[node] = earlier
        if not representative:
            logger.info("eliminate_common_subexpressions: no repeated computation; skipped")
            return gm, TransformInfo(skipped=True, note="nothing repeated")
        for duplicate, earlier in representative.items():
            duplicate.replace_all_uses_with(earlier)
        for duplicate in reversed(list(representative)):
            gm.graph.erase_node(duplicate)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(representative))
