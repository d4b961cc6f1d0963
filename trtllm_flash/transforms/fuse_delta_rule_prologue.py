"""fuse_delta_rule_prologue (stage post_load_fusion, after fuse_causal_convs).

Replaces: DeltaNet's prologue as the export leaves it — ``q = l2norm(q_, eps)``, ``k = l2norm(k_, eps)`` and
    ``beta = sigmoid(b)`` feeding ``delta_rule(q, k, v, beta, scale)``: three small kernels per layer, each a
    launch (and a round trip through memory) of its own at batch-1 decode.
With: ``delta_rule(q_, k_, v, b, scale, eps, True)`` (the op's ``qk_l2norm_eps`` and ``beta_sigmoid``
    options), which normalises q and k and takes the sigmoid of b itself — inside the Triton decode step, on
    the values it loads anyway — rounding each result to its input's dtype as the unfused ops do.
The two halves match independently: q and k when both are ``l2norm`` nodes of one eps whose only user is the
delta rule, beta when it is an ``aten.sigmoid`` whose only user is the delta rule; an option the delta rule
already sets keeps its half as is.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.ops.interface import node_arg
from trtllm_flash.transforms.graph_utils import OpLike, erase_unused, is_op
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def _only_feeds(node: object, op: OpLike, user: Node) -> bool:
    """``node`` calls ``op`` and ``user`` is its only user."""
    return isinstance(node, Node) and is_op(node, op) and set(node.users) == {user}


def _qk_eps(rule: Node) -> Optional[float]:
    """The common eps when q and k of ``rule`` are ``l2norm(x, eps)`` nodes read only by it, else None."""
    q, k = rule.args[0], rule.args[1]
    if node_arg(rule, 5, "qk_l2norm_eps") is not None:
        return None
    if not all(_only_feeds(x, torch.ops.trtllm_flash.l2norm, rule) for x in (q, k)):
        return None
    eps = node_arg(q, 1, "eps")
    return eps if node_arg(k, 1, "eps") == eps else None


def _fusable_sigmoid(rule: Node) -> bool:
    """beta of ``rule`` is ``sigmoid(b)`` read only by it (and the rule does not take a sigmoid already)."""
    if node_arg(rule, 6, "beta_sigmoid", False):
        return False
    return _only_feeds(rule.args[3], torch.ops.aten.sigmoid.default, rule)


@register_transform("fuse_delta_rule_prologue")
class FuseDeltaRulePrologue(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not all(hasattr(torch.ops.trtllm_flash, op) for op in ("delta_rule", "l2norm")):
            logger.info("fuse_delta_rule_prologue: torch.ops.trtllm_flash.delta_rule or l2norm is missing; skipped")
            return gm, TransformInfo(skipped=True, note="op missing")
        plans: List[Tuple[Node, Optional[float], bool]] = []
        for rule in gm.graph.nodes:
            if is_op(rule, torch.ops.trtllm_flash.delta_rule):
                eps, sigmoid = _qk_eps(rule), _fusable_sigmoid(rule)
                if eps is not None or sigmoid:
                    plans.append((rule, eps, sigmoid))
        if not plans:
            logger.info("fuse_delta_rule_prologue: no delta_rule fed by l2norm'd q, k or a sigmoid beta; skipped")
            return gm, TransformInfo(skipped=True, note="no l2norm / sigmoid feeding a delta_rule")
        replaced: List[Node] = []
        for rule, eps, sigmoid in plans:
            q, k, v, beta = rule.args[:4]
            options = [node_arg(rule, 5, "qk_l2norm_eps"), node_arg(rule, 6, "beta_sigmoid", False)]
            if eps is not None:
                replaced += [q, k]
                q, k, options[0] = node_arg(q, 0, "x"), node_arg(k, 0, "x"), eps
            if sigmoid:
                replaced.append(beta)
                beta, options[1] = beta.args[0], True
            # the inputs of the l2norm / sigmoid nodes come before them, so before the delta rule too
            rule.args = (q, k, v, beta, node_arg(rule, 4, "scale"), *options)
            rule.kwargs = {}
        erase_unused(gm, dict.fromkeys(replaced))  # q and k may be one node
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(plans))
