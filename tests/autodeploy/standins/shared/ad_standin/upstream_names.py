"""Upstream's own registry names, registered in each generation's stand-in so tests can check that our
names never replace or collide with them.

* ``UPSTREAM_BACKENDS``: ``AttentionRegistry`` names as the real backends register them
  (``AD/custom_ops/fla/fla_backend_delta.py`` "fla_delta", ``AD/custom_ops/mamba/triton_backend_mamba.py``
  "triton_ssm", ``AD/custom_ops/mamba/cuda_backend_causal_conv.py`` "cuda_causal_conv",
  ``AD/custom_ops/attention/{flashinfer_attention,torch_backend_attention,triton_paged_attention,trtllm_attention}.py``
  "flashinfer" / "torch" / "triton_paged" / "trtllm").
* ``UPSTREAM_TRANSFORMS``: the ``TransformRegistry`` keys of ``AD/config/default.yaml`` revision 0034d905 plus
  ``fuse_mamba_a_log``; placeholders, except ``gather_logits_before_lm_head``, mirrored in
  ``ad_standin.library_gather_logits``.
"""
from ad_standin import library_gather_logits

UPSTREAM_BACKENDS = ("fla_delta", "triton_ssm", "cuda_causal_conv", "flashinfer", "torch", "triton_paged", "trtllm")

UPSTREAM_TRANSFORMS = (
    "build_model", "export_to_gm", "fuse_gemms", "fuse_mamba_a_log", "fuse_add_rms_norm", "fuse_rmsnorm",
    "gather_logits_before_lm_head", "insert_cached_attention", "insert_cached_ssm_attention",
    "insert_cached_causal_conv", "insert_cached_delta_rule", "initialize_cache", "resize_kv_cache", "compile_model",
)


def register_upstream_backends(attention_descriptor, attention_registry) -> None:
    """Register a placeholder descriptor under each of ``UPSTREAM_BACKENDS``."""
    for name in UPSTREAM_BACKENDS:
        attention_registry.register(name)(type(f"Upstream_{name}", (attention_descriptor,), {}))


def register_upstream_transforms(base_transform, transform_registry, batch_info: bool = False) -> None:
    """Register a placeholder under each of ``UPSTREAM_TRANSFORMS``, then the mirrored
    ``gather_logits_before_lm_head`` over its placeholder (``batch_info``: that generation's form)."""
    for key in UPSTREAM_TRANSFORMS:
        transform_registry.register(key)(type(f"Upstream_{key}", (base_transform,), {}))
    transform_registry.register("gather_logits_before_lm_head")(
        library_gather_logits.make_transform(base_transform, batch_info=batch_info))
