"""export_to_gm (stage export).

Replaces: the eager reference model (``nn.Module``).
With: its exported GraphModule (:func:`trtllm_flash.export.export_model`): the export patches applied,
    dynamic batch and sequence dims, one source-op node per token-mixer op.
"""
from __future__ import annotations

from typing import Tuple

import torch.nn as nn
from torch.fx import GraphModule

from trtllm_flash.export import export_model
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformInfo, register_transform


@register_transform("export_to_gm")
class ExportToGM(BaseTransform):
    def apply(self, gm: nn.Module, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        if isinstance(gm, GraphModule):
            return gm, TransformInfo(skipped=True, note="already a GraphModule")
        exported = export_model(gm)
        num_nodes = sum(1 for n in exported.graph.nodes if n.op == "call_function")
        return exported, TransformInfo(skipped=False, num_matches=1, note=f"{num_nodes} op nodes")
