"""STAND-IN of ``AD/transform/library/``: the keys upstream registers (``AD/config/default.yaml`` revision
0034d905 plus ``fuse_mamba_a_log``), so tests can check our keys never replace them. Placeholders, except
``gather_logits_before_lm_head``, mirrored in ``ad_standin.library_gather_logits``."""
from ad_standin import library_gather_logits

from .interface import BaseTransform, TransformRegistry

UPSTREAM_TRANSFORMS = (
    "build_model", "export_to_gm", "fuse_gemms", "fuse_mamba_a_log", "fuse_add_rms_norm", "fuse_rmsnorm",
    "gather_logits_before_lm_head", "insert_cached_attention", "insert_cached_ssm_attention",
    "insert_cached_causal_conv", "insert_cached_delta_rule", "initialize_cache", "resize_kv_cache", "compile_model",
)

for _key in UPSTREAM_TRANSFORMS:
    TransformRegistry.register(_key)(type(f"Upstream_{_key}", (BaseTransform,), {}))
TransformRegistry.register("gather_logits_before_lm_head")(library_gather_logits.make_transform(BaseTransform, batch_info=True))
