"""fuse_norm_linear (stage post_load_fusion, after use_gemv_linear and fuse_add_rms_norm).

Replaces: a norm whose only consumer is a bias-free projection (``aten.linear`` or ``trtllm_flash.linear``):
    * ``normed, total = add_rms_norm(x, residual, w, eps)`` -> ``linear(normed, W)``: every pre-norm after
      the first (mixer in_proj / fused q,k,v and FFN gate/up);
    * ``linear(rms_norm(x, w, eps), W)``: the first layer's pre-norm;
    * ``linear(reshape(rms_norm(x [..., H, D], w [D], eps), [..., H * D]), W)``: DeltaNet's per-head
      output norm before o_proj;
    * ``linear(rms_norm_gated(x, w, gate, eps, G), W)``: Mamba2's gated norm before out_proj.
With: ``add_rms_norm_linear(x, residual, w, W, eps)`` (its second output replaces ``total``) or
    ``rms_norm_linear(x, w, W, eps, group_size, gate)`` (``torch.ops.trtllm_flash``, see
    :mod:`trtllm_flash.ops.norm_linear`): at batch-1 decode one fused GEMV instead of a norm kernel and a
    GEMV; elsewhere the same two kernels as before.
Only matches when x, the norm weight and W share a dtype, the normalised tensor has no other user, and
(for ``add_rms_norm``) every user of ``total`` comes after the projection. A norm feeding the lm_head
through ``gather_logits_before_lm_head``'s gather is left alone.
"""
from __future__ import annotations

import logging
import operator
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import is_op, node_tensor
from trtllm_flash.transforms.use_gemv_linear import is_bias_free_linear_call
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


@dataclass
class _Match:
    linear: Node
    norm: Node  # add_rms_norm, rms_norm or rms_norm_gated; its args are read at rewrite time (an earlier
    # rewrite may have replaced the projection that produces its input)
    dead: List[Node]  # the nodes the fused op replaces, consumers first
    group_size: Optional[int] = None  # None: add_rms_norm (the whole row)
    total: Optional[Node] = None  # add_rms_norm's getitem 1
    merge_heads: Optional[Node] = None  # the reshape [..., H, D] -> [..., H * D] to apply to x first


def _only_user(node: Node, user: Node) -> bool:
    return list(node.users) == [user]


def _bias_free_linear(gm: GraphModule, node: Node) -> bool:
    return is_op(node, (torch.ops.aten.linear, torch.ops.trtllm_flash.linear)) and is_bias_free_linear_call(gm, node)


def _same_dtype(gm: GraphModule, *nodes: object) -> bool:
    values = [node_tensor(gm, n) for n in nodes]
    return all(v is not None for v in values) and len({v.dtype for v in values}) == 1


def _match(gm: GraphModule, linear: Node, order: Dict[Node, int]) -> Optional[_Match]:
    if not _bias_free_linear(gm, linear):
        return None
    h, weight = linear.args
    if not (isinstance(h, Node) and _only_user(h, linear)):
        return None
    if h.op == "call_function" and h.target is operator.getitem and h.args[1] == 0:
        norm = h.args[0]
        if not (isinstance(norm, Node) and is_op(norm, torch.ops.trtllm_flash.add_rms_norm)):
            return None
        totals = [u for u in norm.users if u is not h]
        if len(totals) > 1 or not all(u.target is operator.getitem and u.args[1] == 1 for u in totals):
            return None
        total = totals[0] if totals else None
        if total is not None and any(order[u] < order[linear] for u in total.users):
            return None
        x, norm_weight = norm.args[0], norm.args[2]
        return _Match(linear, norm, [h, *totals, norm], total=total) if _same_dtype(gm, x, norm_weight, weight) else None
    if is_op(h, torch.ops.trtllm_flash.rms_norm):
        value = node_tensor(gm, h.args[0])
        if value is None or not _same_dtype(gm, h.args[0], h.args[1], weight):
            return None
        return _Match(linear, h, [h], group_size=value.shape[-1])
    if is_op(h, torch.ops.trtllm_flash.rms_norm_gated):
        return _Match(linear, h, [h], group_size=h.args[4]) if _same_dtype(gm, h.args[0], h.args[1], weight) else None
    if is_op(h, torch.ops.aten.reshape) and isinstance(h.args[0], Node) and is_op(h.args[0], torch.ops.trtllm_flash.rms_norm):
        norm = h.args[0]
        heads, merged = node_tensor(gm, norm.args[0]), node_tensor(gm, h)
        if heads is None or merged is None or not _only_user(norm, h) or merged.dim() != heads.dim() - 1:
            return None
        if not (isinstance(heads.shape[-1], int) and isinstance(heads.shape[-2], int) and merged.shape[-1] == heads.shape[-2] * heads.shape[-1]):
            return None
        if not _same_dtype(gm, norm.args[0], norm.args[1], weight):
            return None
        return _Match(linear, norm, [h, norm], group_size=heads.shape[-1], merge_heads=h)
    return None


def _rewrite(gm: GraphModule, m: _Match) -> None:
    graph, linear = gm.graph, m.linear
    weight = linear.args[1]
    with graph.inserting_before(linear):
        if m.group_size is None:  # add_rms_norm
            x, residual, norm_weight, eps = m.norm.args
            fused = graph.call_function(torch.ops.trtllm_flash.add_rms_norm_linear.default, (x, residual, norm_weight, weight, eps))
            y = graph.call_function(operator.getitem, (fused, 0))
            total = graph.call_function(operator.getitem, (fused, 1))
            total.meta["val"] = node_tensor(gm, x)
            fused.meta["val"] = (linear.meta.get("val"), total.meta["val"])
            if m.total is not None:
                m.total.replace_all_uses_with(total)
        else:
            x, norm_weight, *rest = m.norm.args
            gate, eps = (rest[0], rest[1]) if is_op(m.norm, torch.ops.trtllm_flash.rms_norm_gated) else (None, rest[0])
            if m.merge_heads is not None:
                x = graph.call_function(torch.ops.aten.reshape.default, (x, *m.merge_heads.args[1:]))
                x.meta.update(m.merge_heads.meta)
            y = graph.call_function(torch.ops.trtllm_flash.rms_norm_linear.default, (x, norm_weight, weight, eps, m.group_size, gate))
    y.meta.update(linear.meta)
    linear.replace_all_uses_with(y)
    for dead in (linear, *m.dead):
        graph.erase_node(dead)


@register_transform("fuse_norm_linear")
class FuseNormLinear(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if not hasattr(torch.ops.trtllm_flash, "rms_norm_linear"):
            logger.info("fuse_norm_linear: torch.ops.trtllm_flash.rms_norm_linear is not registered; skipped")
            return gm, TransformInfo(skipped=True, note="op missing")
        order = {node: i for i, node in enumerate(gm.graph.nodes)}
        matches = [m for m in (_match(gm, node, order) for node in gm.graph.nodes) if m is not None]
        if not matches:
            logger.info("fuse_norm_linear: no norm feeding only a bias-free projection; skipped")
            return gm, TransformInfo(skipped=True, note="no norm + linear")
        for m in matches:
            _rewrite(gm, m)
        gm.graph.lint()
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=len(matches))
