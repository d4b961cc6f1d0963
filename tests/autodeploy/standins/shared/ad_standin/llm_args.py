"""AutoDeploy's ``LlmArgs`` as far as validating a deployment YAML goes, for every generation's stand-in.

Mirrors NVIDIA/TensorRT-LLM ``tensorrt_llm/_torch/auto_deploy/llm_args.py`` at commit 01e5db06 (stored
version 52222397920):

* unknown top-level keys are refused (``extra="forbid"``);
* ``model_factory`` (default ``"AutoModelForCausalLM"``) must be registered in ``ModelFactoryRegistry``:
  ``'<name>' does not exist in the model factory registry. Available values: [...]``;
* ``transforms``: a dict of per-transform dicts; the YAML's entries are merged over the default config
  (``yaml_default`` + ``yaml_extra`` deep merge, later wins, new keys appended — the default here is the
  subset of ``AD/config/default.yaml`` revision 0034d905 in :data:`DEFAULT_TRANSFORMS`);
* shortcuts (``_TRANSFORMS_SHORTCUT_LOOKUP``): ``attn_backend`` <-> ``insert_cached_attention.backend``,
  ``compile_backend`` <-> ``compile_model.backend``; for each transform key present, an explicitly set
  shortcut overwrites the transform's value, then the shortcut takes the transform's value;
* ``kv_cache_config`` is TensorRT-LLM's ``KvCacheConfig`` (its own fields only).
Fields of ``TorchLlmArgs`` the YAMLs use are declared with their types; the rest of ``TorchLlmArgs`` is
not mirrored. ``attn_backend`` is a field here as in the revisions whose lookup names it.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .models_factory import ModelFactoryRegistry

#: (stage, extra fields) of the default.yaml keys the Nemotron-Flash YAMLs touch or rely on
DEFAULT_TRANSFORMS: Dict[str, Dict[str, Any]] = {
    "build_model": {"stage": "factory", "run_per_gm": False},
    "export_to_gm": {"stage": "export", "run_per_gm": False},
    "fuse_gemms": {"stage": "post_load_fusion", "enabled": False},
    "fuse_add_rms_norm": {"stage": "post_load_fusion"},
    "gather_logits_before_lm_head": {"stage": "post_load_fusion", "enabled": False},
    "insert_cached_attention": {"stage": "cache_init", "backend": "flashinfer"},
    "insert_cached_ssm_attention": {"stage": "cache_init", "backend": "triton_ssm"},
    "insert_cached_causal_conv": {"stage": "cache_init", "backend": "cuda_causal_conv"},
    "insert_cached_delta_rule": {"stage": "cache_init", "backend": "fla_delta"},
    "initialize_cache": {"stage": "cache_init", "run_per_gm": False},
    "resize_kv_cache": {"stage": "cache_init", "run_per_gm": False},
    "compile_model": {"stage": "compile", "run_per_gm": False, "backend": "torch-compile"},
}

SHORTCUTS = {"attn_backend": ("insert_cached_attention.backend",), "compile_backend": ("compile_model.backend",)}


def deep_merge(base: Dict[str, Any], extra: Dict[str, Any]) -> Dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


class KvCacheConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    free_gpu_memory_fraction: Optional[float] = 0.9
    enable_block_reuse: bool = True
    dtype: str = "auto"
    tokens_per_block: int = 32


class LlmArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    model_factory: str = "AutoModelForCausalLM"
    model_kwargs: Dict[str, Any] = Field(default_factory=dict)
    tokenizer: Optional[str] = None
    tokenizer_kwargs: Dict[str, Any] = Field(default_factory=dict)
    skip_loading_weights: bool = False
    world_size: int = 1
    runtime: Literal["demollm", "trtllm"] = "trtllm"
    max_batch_size: int = 8
    max_seq_len: Optional[int] = None
    max_num_tokens: Optional[int] = 8192
    enable_chunked_prefill: bool = False
    cuda_graph_batch_sizes: Optional[List[int]] = None
    kv_cache_config: KvCacheConfig = Field(default_factory=KvCacheConfig)
    transforms: Dict[str, Dict[str, Any]] = Field(default_factory=dict)
    attn_backend: str = "flashinfer"
    compile_backend: str = "torch-cudagraph"

    @field_validator("transforms", mode="before")
    @classmethod
    def merge_over_default(cls, value: Any) -> Any:
        return deep_merge(DEFAULT_TRANSFORMS, value or {})

    @field_validator("model_factory", mode="after")
    @classmethod
    def model_factory_exists(cls, value: str) -> str:
        if not ModelFactoryRegistry.has(value):
            raise ValueError(f"'{value}' does not exist in the model factory registry. Available values: {ModelFactoryRegistry.entries()}.")
        return value

    @model_validator(mode="after")
    def update_transforms_with_shortcuts(self) -> "LlmArgs":
        for shortcut, targets in SHORTCUTS.items():
            for target in targets:
                key, field = target.split(".")
                if key not in self.transforms:
                    continue
                if shortcut in self.model_fields_set:
                    self.transforms[key][field] = getattr(self, shortcut)
                setattr(self, shortcut, self.transforms[key][field])
        return self
