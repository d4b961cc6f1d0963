"""Small FX helpers the passes share: op matching, placeholders, parameters, folding parameter-only subgraphs."""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterable, List, Optional, Sequence, Union

import torch
from torch._guards import detect_fake_mode
from torch.fx import GraphModule, Node
from torch.fx.node import map_arg

OpLike = Union[torch._ops.OpOverloadPacket, torch._ops.OpOverload]


def _overloads(op: OpLike) -> List[torch._ops.OpOverload]:
    if isinstance(op, torch._ops.OpOverloadPacket):
        return [getattr(op, name) for name in op.overloads()]
    return [op]


def is_op(node: Node, ops: Union[OpLike, Sequence[OpLike]]) -> bool:
    """True when ``node`` calls ``ops`` (a packet matches every overload)."""
    if node.op != "call_function":
        return False
    ops = ops if isinstance(ops, (list, tuple)) else [ops]
    return any(node.target in _overloads(op) for op in ops)


def last_dim_split_sizes(node: Node) -> Optional[List]:
    """The sizes of ``node = split_with_sizes(y, sizes, dim)`` when ``dim`` is y's last dim, else None
    (y's rank is read from its example value, or from a piece's)."""
    if not (is_op(node, torch.ops.aten.split_with_sizes.default) and isinstance(node.args[0], Node)):
        return None
    sizes = node.args[1] if len(node.args) > 1 else node.kwargs.get("split_sizes")
    dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
    if dim != -1:
        values = [node.args[0].meta.get("val"), *(user.meta.get("val") for user in node.users)]
        ranks = [v.dim() for v in values if isinstance(v, torch.Tensor)]
        if not ranks or dim != ranks[0] - 1:
            return None
    return list(sizes) if isinstance(sizes, (list, tuple)) else None


def find_op_nodes(gm: GraphModule, ops: Union[OpLike, Sequence[OpLike]]) -> List[Node]:
    return [n for n in gm.graph.nodes if is_op(n, ops)]


def placeholders(gm: GraphModule) -> List[Node]:
    return [n for n in gm.graph.nodes if n.op == "placeholder"]


def get_or_add_placeholder(gm: GraphModule, name: str, example: Optional[torch.Tensor] = None) -> Node:
    """The placeholder called ``name``, appended after the last placeholder when absent."""
    existing = [n for n in placeholders(gm) if n.target == name]
    if existing:
        return existing[0]
    last = placeholders(gm)[-1]
    with gm.graph.inserting_after(last):
        node = gm.graph.placeholder(name)
    if node.name != name:
        raise ValueError(f"placeholder name {name!r} collides with a graph node; FX renamed it to {node.name!r}")
    if example is not None:
        node.meta["val"] = example
    return node


def attr_tensor(gm: GraphModule, node: Node) -> torch.Tensor:
    """The parameter or buffer a ``get_attr`` node reads."""
    if node.op != "get_attr":
        raise ValueError(f"{node.format_node()} is not a get_attr node")
    owner = gm
    *path, leaf = node.target.split(".")
    for part in path:
        owner = getattr(owner, part)
    return getattr(owner, leaf)


def node_tensor(gm: GraphModule, node: object) -> Optional[torch.Tensor]:
    """The tensor ``node`` stands for: a ``get_attr``'s parameter or buffer, else its example value
    (``meta["val"]``); None when it is not a node or has no tensor value."""
    if not isinstance(node, Node):
        return None
    value = attr_tensor(gm, node) if node.op == "get_attr" else node.meta.get("val")
    return value if isinstance(value, torch.Tensor) else None


def add_constant(gm: GraphModule, name: str, value: torch.Tensor, before: Node) -> Node:
    """Register ``value`` as a buffer of ``gm`` named ``name`` (dots become ``_``) and return a get_attr on it."""
    attr = re.sub(r"[^0-9a-zA-Z_]", "_", name)
    if hasattr(gm, attr):
        raise ValueError(f"graph module already has an attribute {attr!r}")
    gm.register_buffer(attr, value.detach())
    with gm.graph.inserting_before(before):
        node = gm.graph.get_attr(attr)
    node.meta["val"] = value
    return node


def fused_attr_name(attrs: Sequence[Node]) -> str:
    """Name for the concatenation of parameters: ``model.layers.0.gla.{q,k,v}_conv1d.weight`` ->
    ``model.layers.0.gla.fused_q_conv1d_k_conv1d_v_conv1d_weight``."""
    names = [str(a.target) for a in attrs]
    prefix = os.path.commonprefix(names).rpartition(".")[0]
    suffix = os.path.commonprefix([n[::-1] for n in names])[::-1].partition(".")[2]
    start, end = len(prefix) + 1 if prefix else 0, len(suffix) + 1 if suffix else 0
    leaves = "_".join(n[start : len(n) - end].replace(".", "_") for n in names)
    name = f"fused_{leaves}_{suffix}" if suffix else f"fused_{leaves}"
    return f"{prefix}.{name}" if prefix else name


def concat_last_dim_value(values: Sequence[Optional[torch.Tensor]]) -> Optional[torch.Tensor]:
    """The example value (``meta["val"]``) of ``cat(values, -1)``: an empty tensor of the joined shape,
    made without running ``cat`` (shapes may be symbolic); None when a value is missing."""
    if not values or any(v is None for v in values):
        return None
    first = values[0]
    fake_mode = detect_fake_mode(list(values))
    with fake_mode if fake_mode is not None else contextlib.nullcontext():
        return first.new_empty((*first.shape[:-1], sum(v.shape[-1] for v in values)))


def param_only_inputs(node: Node) -> bool:
    """True when every tensor input of ``node`` (recursively) is a parameter or buffer."""
    inputs = node.all_input_nodes
    return bool(inputs) and all(n.op == "get_attr" or (n.op == "call_function" and param_only_inputs(n)) for n in inputs)


def evaluate_param_subgraph(gm: GraphModule, node: Node) -> torch.Tensor:
    """Run the parameter-only subgraph ending at ``node`` eagerly (once, at build time)."""
    if node.op == "get_attr":
        return attr_tensor(gm, node)
    if node.op != "call_function":
        raise ValueError(f"{node.format_node()} depends on a graph input; cannot fold it")
    args = map_arg(node.args, lambda n: evaluate_param_subgraph(gm, n))
    kwargs = map_arg(node.kwargs, lambda n: evaluate_param_subgraph(gm, n))
    with torch.no_grad():
        return node.target(*args, **kwargs)


def module_path(node: Node) -> str:
    """Dotted path of the innermost module a node was traced in (``""`` when unknown)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return re.sub(r"^L__self___?", "", str(path)).replace("_modules['", "").replace("']", "")


def layer_index(node: Node) -> Optional[int]:
    """Decoder-layer index from the module path (``model.layers.4.self_attn`` -> 4)."""
    match = re.search(r"layers[._](\d+)", module_path(node))
    return int(match.group(1)) if match else None


def erase_unused(gm: GraphModule, nodes: Iterable[Node]) -> None:
    """Erase nodes (given producer-first or any order) that no longer have users, then unused attributes."""
    pending = list(nodes)
    changed = True
    while changed:
        changed = False
        for n in list(pending):
            if not n.users:
                gm.graph.erase_node(n)
                pending.remove(n)
                changed = True
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    drop_unused_attributes(gm)


def drop_unused_attributes(gm: GraphModule) -> None:
    """Delete parameters / buffers of ``gm`` that no get_attr node reads any more."""
    used = {n.target for n in gm.graph.nodes if n.op == "get_attr"}
    for name in [k for k, _ in gm.named_parameters(remove_duplicate=False)] + [k for k, _ in gm.named_buffers(remove_duplicate=False)]:
        if name not in used:
            *path, leaf = name.split(".")
            owner = gm
            for part in path:
                owner = getattr(owner, part)
            delattr(owner, leaf)
