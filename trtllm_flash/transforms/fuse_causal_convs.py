"""fuse_causal_convs (stage post_load_fusion, after fuse_gemms).

Replaces: two or more ``causal_conv1d(x_i, W_i, b_i, act)`` whose inputs are adjacent pieces of one
    ``split_with_sizes`` along the last dim — DeltaNet's q/k/v short convs once ``fuse_gemms`` has merged
    the q/k/v/b projections: three conv kernels (and, once cached, three conv states) per layer.
With: one ``causal_conv1d(x, cat(W_i), cat(b_i), act)`` over the adjacent pieces taken as one piece of
    the split, followed by ``split_with_sizes`` of its output into the original pieces. A depthwise conv
    treats each channel alone, so the result is the same; the cache insertion then gives the layer one
    conv state over all the channels.
Convs with different activations, kernel sizes, weight dtypes or with a bias on some but not all are not
merged.
"""
from __future__ import annotations

import logging
import operator
from typing import Dict, List, Optional, Tuple

import torch
from torch.fx import GraphModule, Node

from trtllm_flash.transforms.graph_utils import add_constant, attr_tensor, concat_last_dim_value, drop_unused_attributes, fused_attr_name, is_op, last_dim_split_sizes
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform

logger = logging.getLogger(__name__)


def _split_piece(node: Node) -> Optional[Tuple[Node, int]]:
    """``(split, index)`` when ``node`` is ``getitem(split_with_sizes(y, sizes, last dim), index)``."""
    if not (node.op == "call_function" and node.target is operator.getitem):
        return None
    split, index = node.args
    return (split, index) if last_dim_split_sizes(split) is not None else None


def _conv_signature(gm: GraphModule, conv: Node) -> Optional[tuple]:
    """What two convs must share to be merged (None when this conv cannot be merged at all)."""
    x, weight, bias, activation = conv.args
    if weight.op != "get_attr" or (bias is not None and bias.op != "get_attr") or len(x.users) != 1:
        return None
    w = attr_tensor(gm, weight)
    return activation, w.shape[1:], w.dtype, bias is None


def _runs(gm: GraphModule, convs: Dict[int, Node]) -> List[List[int]]:
    """Maximal runs (length >= 2) of adjacent split indices whose convs can be merged with each other."""
    signatures = {index: _conv_signature(gm, conv) for index, conv in convs.items()}
    runs: List[List[int]] = []
    for index in sorted(convs):
        signature = signatures[index]
        if signature is None:
            continue
        last = runs[-1] if runs else None
        if last and last[-1] == index - 1 and signatures[last[-1]] == signature:
            last.append(index)
        else:
            runs.append([index])
    return [run for run in runs if len(run) > 1]


def _fuse(gm: GraphModule, split: Node, convs: Dict[int, Node], runs: List[List[int]]) -> None:
    source, sizes = split.args[0], last_dim_split_sizes(split)
    order = {node: position for position, node in enumerate(gm.graph.nodes)}
    run_of = {index: run for run in runs for index in run}
    new_sizes: List[int] = []
    new_index: Dict[int, int] = {}
    for index, size in enumerate(sizes):
        if index in run_of and index != run_of[index][0]:
            new_index[index] = new_index[run_of[index][0]]
            new_sizes[-1] += size
        else:
            new_index[index] = len(new_sizes)
            new_sizes.append(size)
    # example values: the old pieces' own, joined where a run merges them (no op is run on them)
    old_values = {item.args[1]: item.meta.get("val") for item in split.users}
    new_values: Dict[int, list] = {}
    for index in range(len(sizes)):
        new_values.setdefault(new_index[index], []).append(old_values.get(index))
    piece_values = {new: values[0] if len(values) == 1 else concat_last_dim_value(values) for new, values in new_values.items()}
    with gm.graph.inserting_after(split):
        new_split = gm.graph.call_function(torch.ops.aten.split_with_sizes.default, (source, new_sizes, -1))
    new_split.meta["val"] = [piece_values[new] for new in range(len(new_sizes))]
    pieces: Dict[int, Node] = {}
    for new in sorted(set(new_index.values()), reverse=True):
        with gm.graph.inserting_after(new_split):
            pieces[new] = gm.graph.call_function(operator.getitem, (new_split, new))
        pieces[new].meta["val"] = piece_values[new]
    for item in list(split.users):
        if item.args[1] not in run_of:
            item.replace_all_uses_with(pieces[new_index[item.args[1]]])
    for run in runs:
        members = [convs[i] for i in run]
        first = min(members, key=order.__getitem__)
        weights = [m.args[1] for m in members]
        weight = add_constant(gm, fused_attr_name(weights), torch.cat([attr_tensor(gm, w) for w in weights]), before=first)
        bias = None
        if members[0].args[2] is not None:
            biases = [m.args[2] for m in members]
            bias = add_constant(gm, fused_attr_name(biases), torch.cat([attr_tensor(gm, b) for b in biases]), before=first)
        with gm.graph.inserting_before(first):
            fused = gm.graph.call_function(first.target, (pieces[new_index[run[0]]], weight, bias, first.args[3]))
        fused.meta.update({k: v for k, v in first.meta.items() if k in ("nn_module_stack", "stack_trace")})
        fused.meta["val"] = pieces[new_index[run[0]]].meta["val"]  # the conv keeps its input's shape
        with gm.graph.inserting_after(fused):
            out_split = gm.graph.call_function(torch.ops.aten.split_with_sizes.default, (fused, [sizes[i] for i in run], -1))
        out_split.meta["val"] = [member.meta.get("val") for member in members]
        previous = out_split
        for position, member in enumerate(members):
            with gm.graph.inserting_after(previous):
                part = gm.graph.call_function(operator.getitem, (out_split, position))
            part.meta.update(member.meta)
            member.replace_all_uses_with(part)
            previous = part
    merged = [convs[i] for run in runs for i in run]
    params = [p for conv in merged for p in conv.args[1:3] if p is not None]
    for node in [*merged, *list(split.users), split, *params]:
        if not node.users:
            gm.graph.erase_node(node)


@register_transform("fuse_causal_convs")
class FuseCausalConvs(BaseTransform):
    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        by_split: Dict[Node, Dict[int, Node]] = {}
        for conv in gm.graph.nodes:
            if not is_op(conv, torch.ops.trtllm_flash.causal_conv1d):
                continue
            piece = _split_piece(conv.args[0])
            if piece is not None:
                by_split.setdefault(piece[0], {})[piece[1]] = conv
        plans = [(split, convs, _runs(gm, convs)) for split, convs in by_split.items()]
        plans = [plan for plan in plans if plan[2]]
        if not plans:
            logger.info("fuse_causal_convs: no adjacent convs on one split; skipped")
            return gm, TransformInfo(skipped=True, note="nothing to merge")
        for split, convs, runs in plans:
            _fuse(gm, split, convs, runs)
        gm.graph.lint()
        drop_unused_attributes(gm)
        gm.recompile()
        return gm, TransformInfo(skipped=False, num_matches=sum(len(runs) for _, _, runs in plans))
