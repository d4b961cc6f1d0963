"""torch.export of the patched reference model into a plain FX GraphModule.

``export_model(model)`` returns a GraphModule with two placeholders ``input_ids, position_ids [b, s]``
int64 (``b`` and ``s`` dynamic, ``s`` may be 1) and one output, the logits ``[b, s, vocab]`` fp32. Every
token mixer is one source-op node (``torch.ops.trtllm_flash.attention / ssm / causal_conv1d /
delta_rule``) thanks to :func:`trtllm_flash.patches.apply_export_patches`; the eager model is untouched.

The exported module's pytree calling convention, input guards and tensor-metadata asserts are removed, so
later passes can add placeholders (metadata, caches, ``gather_idx``) and the runtime calls it with
keyword arguments named after the placeholders.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.export import Dim
from torch.fx import GraphModule

import trtllm_flash.ops  # noqa: F401  (registers the source ops the patches call)
from trtllm_flash.patches import apply_export_patches

#: example shape traced; both dims are exported as dynamic
EXAMPLE_BATCH, EXAMPLE_SEQ = 2, 8
_ASSERT_OPS = (
    torch.ops.aten._assert_tensor_metadata.default,
    torch.ops.aten._assert_scalar.default,
    torch.ops.aten.sym_constrain_range_for_size.default,
)


def export_model(model: nn.Module) -> GraphModule:
    """Export ``model(input_ids, position_ids) -> logits`` with dynamic batch and sequence dims."""
    device = next(model.parameters()).device
    input_ids = torch.zeros(EXAMPLE_BATCH, EXAMPLE_SEQ, dtype=torch.int64, device=device)
    position_ids = torch.arange(EXAMPLE_SEQ, device=device).expand(EXAMPLE_BATCH, EXAMPLE_SEQ).contiguous()
    batch, seq = Dim("batch", min=1, max=1 << 16), Dim("seq", min=1, max=1 << 24)
    dynamic = {"input_ids": {0: batch, 1: seq}, "position_ids": {0: batch, 1: seq}}
    with torch.no_grad(), apply_export_patches(model):
        program = torch.export.export(
            model, (), {"input_ids": input_ids, "position_ids": position_ids}, dynamic_shapes=dynamic, strict=False
        )
    return clean_exported_graph(program.module())


def clean_exported_graph(exported: GraphModule) -> GraphModule:
    """A plain GraphModule over the exported graph: plain codegen (keyword-callable, returns the first
    output tensor), no pytree / input-constraint hooks, no guards, no metadata asserts."""
    graph = exported.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and node.target == "_guards_fn":
            graph.erase_node(node)
        elif node.op == "call_function" and node.target in _ASSERT_OPS and not node.users:
            graph.erase_node(node)
    output = next(n for n in graph.nodes if n.op == "output")
    outputs = output.args[0]
    first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    output.args = (first,)
    graph._codegen = torch.fx.graph.CodeGen()
    graph.eliminate_dead_code()
    graph.lint()
    return GraphModule(exported, graph)
