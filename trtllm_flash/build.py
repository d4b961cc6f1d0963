"""build_model(args) -> BuiltModel: load the reference model, export it, run the transform pipeline.

The pipeline is :data:`trtllm_flash.transforms.DEFAULT_PIPELINE` merged with ``args.transforms`` (the YAML
``transforms:`` section) and the LlmArgs shortcuts ``compile_backend`` / ``cuda_graph_batch_sizes`` /
``attn_backend`` (which win over the section, as in AutoDeploy).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import torch
from torch.fx import GraphModule

from trtllm_flash.ops.interface import METADATA_NAMES, CacheSpec
from trtllm_flash.ops.metadata import BatchMetadata
from trtllm_flash.runtime.multi_step import greedy_decode_steps
from trtllm_flash.transforms import BuildContext, merge_transforms, run_pipeline
from trtllm_flash.transforms.gather_logits_before_lm_head import GATHER_IDX
from trtllm_flash.transforms.graph_utils import placeholders
from trtllm_flash.transforms.pipeline import StepReport

#: LlmArgs field -> (transform, setting) it overrides when set
_SHORTCUTS = {
    "compile_backend": ("compile_model", "backend"),
    "cuda_graph_batch_sizes": ("compile_model", "cuda_graph_batch_sizes"),
    "attn_backend": ("insert_cached_attention", "backend"),
}
DEFAULT_PAGE_SIZE = 64


class BuiltModel:
    """The transformed graph and what the runtime needs to feed it.

    ``cache_specs``: one :class:`CacheSpec` per cache placeholder (the runtime's CacheManager allocates
    them and passes them back by name on every forward).
    """

    def __init__(self, config: Any, gm: GraphModule, cache_specs: Dict[str, CacheSpec], runner: Callable[..., torch.Tensor], reports: List[StepReport]):
        self.config = config
        self.graph_module = gm
        self.cache_specs = dict(cache_specs)
        self.runner = runner
        self.reports = reports
        names = [p.target for p in placeholders(gm)]
        self.metadata_names = [n for n in METADATA_NAMES if n in names]
        self.gathers_in_graph = GATHER_IDX in names
        unknown = set(names) - {"input_ids", "position_ids", GATHER_IDX, *METADATA_NAMES, *self.cache_specs}
        if unknown:
            raise ValueError(f"the built graph has inputs nobody feeds: {sorted(unknown)}")

    @torch.no_grad()
    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        metadata: BatchMetadata,
        caches: Dict[str, torch.Tensor],
        gather_idx: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``input_ids, position_ids [T]`` int64 (prefill tokens first, then one per decode), ``caches`` by
        placeholder name, ``gather_idx [N]`` flat token indices -> logits ``[N, vocab]`` fp32.

        ``gather_idx`` None: every token's logits (``N = T``, e.g. a decode-only batch), with no gather."""
        inputs = self._inputs(input_ids, position_ids, metadata, caches, gather_idx)
        logits = self.runner(**inputs)
        logits = logits.reshape(-1, logits.shape[-1])
        if gather_idx is not None and not self.gathers_in_graph:
            logits = logits.index_select(0, gather_idx)
        return logits.float()

    @torch.no_grad()
    def decode_steps(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        metadata: BatchMetadata,
        caches: Dict[str, torch.Tensor],
        k: int,
    ) -> torch.Tensor:
        """Greedy tokens ``[k, n]`` (int64) of ``k`` decode steps of a decode-only batch of ``n`` rows
        (:mod:`trtllm_flash.runtime.multi_step`): one CUDA-graph replay where the runner has graphs, else
        ``k`` eager forwards. The caller provides KV pages for ``k`` more tokens of every row;
        ``input_ids``, ``position_ids`` and ``metadata.input_pos`` may be advanced in place."""
        if metadata.num_prefill:
            raise ValueError(f"decode_steps needs a decode-only batch, got {metadata.num_prefill} prefill sequences")
        inputs = self._inputs(input_ids, position_ids, metadata, caches, None)
        runner_steps = getattr(self.runner, "decode_steps", None)
        if runner_steps is not None:
            return runner_steps(k, **inputs)
        out = torch.empty(k, input_ids.numel(), dtype=torch.int64, device=input_ids.device)
        return greedy_decode_steps(self.runner, inputs, out)

    def _inputs(self, input_ids, position_ids, metadata, caches, gather_idx) -> Dict[str, torch.Tensor]:
        """The graph module's keyword inputs (``gather_idx`` None: every token's row)."""
        missing = [name for name in self.cache_specs if name not in caches]
        if missing:
            raise KeyError(f"caches is missing {missing[:3]}{'...' if len(missing) > 3 else ''} (expected every key of cache_specs)")
        meta = metadata.as_dict()
        inputs = {"input_ids": input_ids.reshape(1, -1), "position_ids": position_ids.reshape(1, -1)}
        inputs.update({name: meta[name] for name in self.metadata_names})
        inputs.update({name: caches[name] for name in self.cache_specs})
        if self.gathers_in_graph:
            inputs[GATHER_IDX] = torch.arange(input_ids.numel(), device=input_ids.device) if gather_idx is None else gather_idx
        return inputs

    __call__ = forward


def transform_overrides(args: Any) -> Dict[str, Dict[str, Any]]:
    """``args.transforms`` with the LlmArgs shortcuts applied on top."""
    overrides = {name: dict(values or {}) for name, values in (getattr(args, "transforms", None) or {}).items()}
    for field, (transform, setting) in _SHORTCUTS.items():
        value = getattr(args, field, None)
        if value is not None:
            overrides.setdefault(transform, {})[setting] = value
    return overrides


def resolve_device(args: Any) -> torch.device:
    device = getattr(args, "device", None) or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(args: Any, device: torch.device) -> torch.dtype:
    """``args.dtype``: a torch dtype or its name; ``auto`` (or unset) = bf16 on the GPU, fp32 on the CPU."""
    dtype = getattr(args, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r} is not supported; use one of auto, {', '.join(names)}")
    return names[dtype]


def page_size(args: Any) -> int:
    kv = getattr(args, "kv_cache_config", None)
    size = getattr(args, "page_size", None) or getattr(kv, "tokens_per_block", None)
    return int(size or DEFAULT_PAGE_SIZE)


def build_model(args: Any, progress: Optional[Callable[[str], None]] = print) -> BuiltModel:
    """Load ``args.model`` (preset name or checkpoint dir), export it and run the pipeline."""
    from trtllm_flash.loading import load_model

    say = progress or (lambda line: None)
    configs = merge_transforms(transform_overrides(args))  # validate the YAML before the slow part
    device = resolve_device(args)
    dtype = resolve_dtype(args, device)
    start = time.perf_counter()
    model = load_model(args.model, dtype=dtype, device=device, seed=getattr(args, "seed", 0) or 0)
    model.eval()
    say(f"[build] {'load':<16} {time.perf_counter() - start:6.2f}s  {args.model} ({str(dtype).replace('torch.', '')}, {device})")
    ctx = BuildContext(
        max_batch_size=int(getattr(args, "max_batch_size", None) or 8),
        max_seq_len=int(getattr(args, "max_seq_len", None) or 2048),
        page_size=page_size(args),
        device=device,
    )
    gm, reports = run_pipeline(model, configs, ctx, say)
    if not isinstance(gm, GraphModule):
        raise ValueError("transforms.export_to_gm is disabled: the pipeline needs the exported graph")
    return BuiltModel(model.config, gm, ctx.cache_specs, ctx.runner or gm, reports)
