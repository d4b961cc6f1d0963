"""compile_model (stage compile).

Replaces: nothing in the graph; sets ``ctx.runner``, the callable the built model runs the graph with.
With, by ``backend``:
  * ``torch-simple``   — the graph module, eager (the CPU path);
  * ``torch-cudagraph``— :class:`~trtllm_flash.runtime.cuda_graph.CudaGraphRunner`: decode-only batches
    padded to the nearest ``cuda_graph_batch_sizes`` entry and replayed from CUDA graphs, the rest eager
    (on the CPU everything runs eagerly);
  * ``torch-compile``  — ``torch.compile(graph module, dynamic=True)``;
  * ``torch-opt``      — as torch-cudagraph, but each decode graph is captured from
    ``torch.compile(graph module, dynamic=False)`` (Inductor fuses the elementwise glue between our ops:
    RoPE, SiLU, gates, casts); prefill stays eager.
"""
from __future__ import annotations

import math
from typing import List, Literal, Optional, Tuple

import torch
from torch.fx import GraphModule

from trtllm_flash.runtime.cuda_graph import CudaGraphRunner, check_graph_batch_sizes
from trtllm_flash.transforms.graph_utils import placeholders
from trtllm_flash.transforms.registry import BaseTransform, BuildContext, TransformConfig, TransformInfo, register_transform


def default_graph_batch_sizes(max_batch_size: int) -> List[int]:
    """Decode batch sizes captured when none are given: 1, 2, 4, multiples of 8, and max_batch_size."""
    sizes = [b for b in (1, 2, 4) if b <= max_batch_size] + list(range(8, max_batch_size + 1, 8))
    return sorted(set(sizes + [max_batch_size]), reverse=True)


class CompileModelConfig(TransformConfig):
    backend: Literal["torch-simple", "torch-cudagraph", "torch-compile", "torch-opt"] = "torch-simple"
    cuda_graph_batch_sizes: Optional[List[int]] = None


@register_transform("compile_model")
class CompileModel(BaseTransform):
    config_class = CompileModelConfig

    def apply(self, gm: GraphModule, ctx: BuildContext) -> Tuple[GraphModule, TransformInfo]:
        backend = self.config.backend
        if backend == "torch-simple":
            ctx.runner = gm
        elif backend == "torch-compile":
            ctx.runner = torch.compile(gm, dynamic=True)
        else:
            sizes = self.config.cuda_graph_batch_sizes or default_graph_batch_sizes(ctx.max_batch_size)
            check_graph_batch_sizes(sizes, ctx.max_batch_size)
            # on the CPU the runner runs eagerly; LlmArgs.unhonoured() says so once, before the build
            ctx.runner = CudaGraphRunner(
                gm,
                input_names=[p.target for p in placeholders(gm)],
                batch_sizes=sizes,
                max_batch_size=ctx.max_batch_size,
                max_pages_per_seq=math.ceil(ctx.max_seq_len / ctx.page_size),
                cache_specs=ctx.cache_specs,
                capture_module=torch.compile(gm, dynamic=False) if backend == "torch-opt" and ctx.device.type == "cuda" else None,
            )
        return gm, TransformInfo(skipped=False, num_matches=1, note=backend)
