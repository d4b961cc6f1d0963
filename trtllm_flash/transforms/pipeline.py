"""The default pipeline (our ``default.yaml``), merging a YAML ``transforms:`` section into it, and running it.

Merging follows AutoDeploy: per key a shallow update of the default entry, new keys appended after the
existing ones (so within a stage they run later), every entry sorted by stage (stable) at run time. A key
that is not in the default pipeline must carry ``stage``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch.nn as nn

from trtllm_flash.transforms.registry import (
    BuildContext,
    Stage,
    TransformConfig,
    TransformInfo,
    get_transform,
    make_config,
    pipeline_order,
)

DEFAULT_PIPELINE: Dict[str, Dict[str, Any]] = {
    "export_to_gm": {"stage": "export"},
    "eliminate_common_subexpressions": {"stage": "post_load_fusion"},
    "fuse_mamba_a_log": {"stage": "post_load_fusion", "enabled": True},
    "fold_logit_row_norm": {"stage": "post_load_fusion"},
    "fuse_gemms": {"stage": "post_load_fusion"},
    "fuse_causal_convs": {"stage": "post_load_fusion"},
    "fuse_delta_rule_prologue": {"stage": "post_load_fusion"},
    "fuse_silu_mul": {"stage": "post_load_fusion"},
    "fuse_add_rms_norm": {"stage": "post_load_fusion"},
    # off by default as in AutoDeploy's default.yaml; nemotron_flash.yaml turns it on
    "gather_logits_before_lm_head": {"stage": "post_load_fusion", "enabled": False},
    "use_gemv_linear": {"stage": "post_load_fusion"},
    # FP8 weights: off by default (transforms: {quantize_fp8_weights: {enabled: true}})
    "quantize_fp8_weights": {"stage": "post_load_fusion", "enabled": False},
    "fuse_norm_linear": {"stage": "post_load_fusion"},
    "insert_cached_attention": {"stage": "cache_init", "backend": "trtllm_flash_attention"},
    "insert_cached_ssm_attention": {"stage": "cache_init", "backend": "trtllm_flash_ssm"},
    "insert_cached_causal_conv": {"stage": "cache_init", "backend": "trtllm_flash_causal_conv"},
    "insert_cached_delta_rule": {"stage": "cache_init", "backend": "trtllm_flash_delta_rule"},
    "compile_model": {"stage": "compile", "backend": "torch-simple", "cuda_graph_batch_sizes": None},
}


def merge_transforms(overrides: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, TransformConfig]:
    """The default pipeline updated with ``overrides`` (a YAML ``transforms:`` section), validated."""
    merged = copy.deepcopy(DEFAULT_PIPELINE)
    for name, values in (overrides or {}).items():
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ValueError(f"transforms.{name} must be a mapping of settings, got {values!r}")
        get_transform(name)  # unknown name -> KeyError naming the closest one
        if name not in merged and "stage" not in values:
            raise ValueError(f"transforms.{name} is not in the default pipeline, so it needs a 'stage:' (one of {[s.value for s in Stage]})")
        merged.setdefault(name, {}).update(values)
    return {name: make_config(name, values) for name, values in merged.items()}


@dataclass(frozen=True)
class StepReport:
    name: str
    stage: Stage
    enabled: bool
    info: Optional[TransformInfo]
    seconds: float


def run_pipeline(
    model: nn.Module,
    configs: Dict[str, TransformConfig],
    ctx: BuildContext,
    progress: Callable[[str], None] = lambda line: None,
) -> Tuple[nn.Module, List[StepReport]]:
    """Run the enabled passes stage by stage; ``progress`` gets a line when a stage starts (its passes)
    and one when it ends (its time and each pass's matches)."""
    reports: List[StepReport] = []
    ordered = pipeline_order(configs)
    for stage in Stage:
        entries = [(n, c) for n, c in ordered if c.stage == stage]
        if not entries:
            continue
        enabled = [name for name, config in entries if config.enabled]
        progress(f"[build] {stage.value:<16}    ...  {', '.join(enabled) or '-'}")
        stage_start = time.perf_counter()
        parts = []
        for name, config in entries:
            if not config.enabled:
                reports.append(StepReport(name, stage, False, None, 0.0))
                continue
            start = time.perf_counter()
            model, info = get_transform(name)(config).apply(model, ctx)
            reports.append(StepReport(name, stage, True, info, time.perf_counter() - start))
            parts.append(f"{name} ({'skipped' if info.skipped else info.num_matches})")
        progress(f"[build] {stage.value:<16} {time.perf_counter() - stage_start:6.2f}s  {', '.join(parts) or '-'}")
    return model, reports


def describe_pipeline(configs: Dict[str, TransformConfig]) -> List[str]:
    """Stage-ordered lines: name, enabled, and the pass-specific settings (backend, ...)."""
    lines = []
    for name, config in pipeline_order(configs):
        extra = {k: v for k, v in config.model_dump().items() if k not in ("stage", "enabled")}
        settings = "  ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(f"{config.stage.value:<16} {name:<32} {'enabled ' if config.enabled else 'disabled'}  {settings}".rstrip())
    return lines
