"""Graph transforms, one pass per file, run in AutoDeploy's stages (see :mod:`.pipeline`).

Importing this package registers every pass; ``python -m trtllm_flash.transforms --list`` prints the
pipeline a YAML produces.
"""
from trtllm_flash.transforms import (  # noqa: F401  (registration)
    compile_model,
    eliminate_common_subexpressions,
    export_to_gm,
    fold_logit_row_norm,
    fuse_add_rms_norm,
    fuse_causal_convs,
    fuse_delta_rule_prologue,
    fuse_gemms,
    fuse_mamba_a_log,
    fuse_norm_linear,
    fuse_silu_mul,
    gather_logits_before_lm_head,
    insert_cached_op,
    quantize_fp8_weights,
    use_gemv_linear,
)
from trtllm_flash.transforms.pipeline import DEFAULT_PIPELINE, describe_pipeline, merge_transforms, run_pipeline
from trtllm_flash.transforms.registry import BuildContext, Stage, TransformConfig, TransformInfo, all_transforms

__all__ = [
    "DEFAULT_PIPELINE",
    "BuildContext",
    "Stage",
    "TransformConfig",
    "TransformInfo",
    "all_transforms",
    "describe_pipeline",
    "merge_transforms",
    "run_pipeline",
]
