"""insert_cached_attention / insert_cached_ssm_attention / insert_cached_causal_conv / insert_cached_delta_rule.

Replaces: every call of a descriptor's source op, e.g. ``delta_rule(q, k, v, beta, scale)`` on a padded
    batch from a zero state.
With: the descriptor's cached op ``cached_delta_rule(q, k, v, beta, <metadata>, <caches>, <constants>)``:
    the first ``num_inputs`` args unchanged, one graph placeholder per metadata name (shared by all
    families, added once), one placeholder per cache named ``<cache>_<layer>`` (``_<k>`` appended when a
    layer owns several, e.g. DeltaNet's three convs), whose :class:`CacheSpec` is recorded in
    ``ctx.cache_specs``, then the descriptor's constants.

One implementation serves all four keys; ``backend:`` names the descriptor (AutoDeploy's convention).
"""
from __future__ import annotations

import logging
from typing import Dict, List, Tuple

from torch.fx import GraphModule, Node

from trtllm_flash.ops.interface import get_descriptor
from trtllm_flash.transforms.graph_utils import find_op_nodes, get_or_add_placeholder, layer_index
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformConfig, TransformInfo, register_transform

logger = logging.getLogger(__name__)

#: the AutoDeploy keys this pass answers to, with the descriptor each selects by default
INSERT_KEYS: Dict[str, str] = {
    "insert_cached_attention": "trtllm_flash_attention",
    "insert_cached_ssm_attention": "trtllm_flash_ssm",
    "insert_cached_causal_conv": "trtllm_flash_causal_conv",
    "insert_cached_delta_rule": "trtllm_flash_delta_rule",
}


class InsertCachedOpConfig(TransformConfig):
    #: name of a registered :class:`~trtllm_flash.ops.interface.OpDescriptor`
    backend: str


class InsertCachedOp(BaseTransform):
    config_class = InsertCachedOpConfig

    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        try:
            descriptor = get_descriptor(self.config.backend)
        except KeyError as err:
            raise ValueError(f"transforms.{self.name}.backend: {err.args[0]}") from None
        sources = find_op_nodes(gm, descriptor.source_op())
        if not sources:
            logger.info("%s: no %s nodes in the graph; skipped", self.name, descriptor.source_op())
            return gm, TransformInfo(skipped=True, note="no source op nodes")
        # read everything the rewrite needs first, so a failure leaves the graph untouched
        plans = [(node, descriptor.cache_specs(node), descriptor.constants(node)) for node in sources]
        metadata = [get_or_add_placeholder(gm, name) for name in descriptor.standard_metadata()]
        for ordinal, (node, specs, constants) in enumerate(plans):
            layer = layer_index(node)
            caches: List[Node] = []
            for cache_name, spec in specs.items():
                placeholder_name = _unique_name(f"{cache_name}_{ordinal if layer is None else layer}", ctx)
                ctx.cache_specs[placeholder_name] = spec
                caches.append(get_or_add_placeholder(gm, placeholder_name))
            inputs = tuple(node.args[: descriptor.num_inputs()])
            with gm.graph.inserting_before(node):
                cached = gm.graph.call_function(descriptor.cached_op(), args=(*inputs, *metadata, *caches, *constants))
            cached.meta.update({k: v for k, v in node.meta.items() if k in ("val", "nn_module_stack", "stack_trace")})
            node.replace_all_uses_with(cached)
            gm.graph.erase_node(node)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(plans))


def _unique_name(base: str, ctx: BuildContext) -> str:
    name, k = base, 1
    while name in ctx.cache_specs:
        name, k = f"{base}_{k}", k + 1
    return name


@register_transform("insert_cached_attention")
class InsertCachedAttention(InsertCachedOp):
    pass


@register_transform("insert_cached_ssm_attention")
class InsertCachedSSM(InsertCachedOp):
    pass


@register_transform("insert_cached_causal_conv")
class InsertCachedCausalConv(InsertCachedOp):
    pass


@register_transform("insert_cached_delta_rule")
class InsertCachedDeltaRule(InsertCachedOp):
    pass
