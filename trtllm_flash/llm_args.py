"""LlmArgs: the subset of TensorRT-LLM AutoDeploy's ``LlmArgs`` that trtllm-flash supports, read from YAML.

``load_llm_args(yaml_paths, overrides, **kwargs)`` merges the YAML files in order (nested dicts merge
key by key, later files win), then ``overrides`` (``{"kv_cache_config.tokens_per_block": 16}`` or
nested dicts; :func:`parse_dot_overrides` turns ``"a.b=value"`` strings into them with YAML-typed
values), then ``kwargs``, and validates the result.

Keys we accept but cannot honour on this machine are kept and listed by :meth:`LlmArgs.unhonoured`
(what runs instead is :meth:`LlmArgs.for_build`). An unknown key is a ``ValueError`` naming it and the
closest valid key; every error is one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Dict, List, Literal, Optional, Sequence, Tuple

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trtllm_flash.hints import closest_key_hint

#: the factories a YAML may name (AutoDeploy's generic one builds our model too)
MODEL_FACTORIES = ("NemotronFlashForCausalLM", "AutoModelForCausalLM")
#: the compile backend each requested one runs as here
CPU_KV_NOTE = "on the CPU the KV cache gets a 1 GiB budget; set kv_cache_config.max_tokens to size it"


class _StrictModel(BaseModel):
    """Rejects unknown keys with the closest valid one (pydantic's own message names no alternative)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    key_prefix: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(f"unknown key {cls.key_prefix + str(key)!r}{closest_key_hint(str(key), list(cls.model_fields))}")
        return data


class KvCacheConfig(_StrictModel):
    """``kv_cache_config``: KV pages and their budget, and the prefix cache
    (:mod:`trtllm_flash.runtime.prefix_cache`).

    ``reuse_memory_tokens`` (ours): compute the state after the model's memory tokens once and start
    every prompt from it. ``enable_block_reuse``: also reuse what requests compute — shared pages of a
    common prefix plus recurrent-state snapshots, at most ``max_snapshots`` of them (least recently
    used dropped first; one costs a slot's recurrent state: 16 MiB for the 1B, 37 MiB for the 3B,
    see README.md's prefix-cache section). Off by default: a resumed prompt is computed in different chunks, which
    is exact in fp32 but not bit-identical in bf16.
    """

    key_prefix: ClassVar[str] = "kv_cache_config."

    free_gpu_memory_fraction: float = Field(0.9, gt=0.0, le=1.0)
    enable_block_reuse: bool = False
    reuse_memory_tokens: bool = True
    max_snapshots: int = Field(16, ge=0)
    tokens_per_block: int = Field(32, ge=1)
    max_tokens: Optional[int] = Field(None, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16", "fp8"] = "auto"
    # accepted for compatibility, not honoured (reported when set)
    enable_partial_reuse: Optional[bool] = None
    max_attention_window: Optional[List[int]] = None
    sink_token_length: Optional[int] = None
    host_cache_size: Optional[int] = None
    mamba_ssm_cache_dtype: Optional[str] = None


class LlmArgs(_StrictModel):
    """The LLM arguments (AutoDeploy's field names and meanings).

    ``device`` and ``dtype`` ``"auto"``: the GPU in bf16 when there is one, else the CPU in fp32.
    ``compile_backend`` defaults to ``torch-simple`` (eager), which runs everywhere. ``seed`` (our
    addition) seeds the random weights of a preset model. ``decode_steps_per_launch`` (ours): a
    decode-only batch whose requests are all greedy runs that many decode steps per launch (one CUDA
    graph replay), the host reading their tokens at once; 1 = one step per launch.
    """

    model: Optional[str] = None
    tokenizer: Optional[str] = None
    model_factory: str = "NemotronFlashForCausalLM"
    model_kwargs: Dict[str, Any] = Field(default_factory=dict)
    tokenizer_kwargs: Dict[str, Any] = Field(default_factory=dict)
    skip_tokenizer_init: bool = False
    skip_loading_weights: bool = False
    trust_remote_code: bool = False
    mode: Literal["graph", "transformers"] = "graph"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    seed: int = 0
    world_size: int = 1
    max_beam_width: int = 1
    compile_backend: Literal["torch-simple", "torch-compile", "torch-cudagraph", "torch-opt"] = "torch-simple"
    attn_backend: Optional[str] = None
    max_batch_size: int = Field(8, ge=1)
    max_seq_len: int = Field(512, ge=2)
    max_num_tokens: int = Field(8192, ge=1)
    enable_chunked_prefill: bool = False
    cuda_graph_batch_sizes: Optional[List[int]] = None
    disable_overlap_scheduler: bool = False
    decode_steps_per_launch: int = Field(1, ge=1, le=64)
    kv_cache_config: KvCacheConfig = Field(default_factory=KvCacheConfig)
    transforms: Dict[str, Dict[str, Any]] = Field(default_factory=dict)

    @field_validator("model_factory")
    @classmethod
    def _known_factory(cls, value: str) -> str:
        if value not in MODEL_FACTORIES:
            raise ValueError(f"{value!r} is not a model factory trtllm-flash has; use NemotronFlashForCausalLM")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda") and not (value.startswith("cuda:") and value[5:].isdigit()):
            raise ValueError(f"{value!r} is not a device; use auto, cpu, cuda or cuda:<index>")
        return value

    @field_validator("world_size")
    @classmethod
    def _one_gpu(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"must be 1: trtllm-flash runs on one GPU, got {value}")
        return value

    @field_validator("max_beam_width")
    @classmethod
    def _no_beams(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"must be 1: beam search is not supported, got {value}")
        return value

    @field_validator("cuda_graph_batch_sizes")
    @classmethod
    def _positive_sizes(cls, value: Optional[List[int]]) -> Optional[List[int]]:
        if value is not None and any(b < 1 for b in value):
            raise ValueError(f"entries must be >= 1, got {value}")
        return value

    @field_validator("transforms")
    @classmethod
    def _transform_sections(cls, value: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
        return {name: dict(section or {}) for name, section in value.items()}

    # -- what runs -----------------------------------------------------------------------------

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def graph_batch_sizes(self) -> Optional[List[int]]:
        """``cuda_graph_batch_sizes`` without the entries above ``max_batch_size`` (None: the defaults)."""
        if self.cuda_graph_batch_sizes is None:
            return None
        kept = [b for b in self.cuda_graph_batch_sizes if b <= self.max_batch_size]
        return kept or None

    def for_build(self) -> "LlmArgs":
        """A copy with what actually runs here: the device resolved, graph sizes that fit, an upstream
        ``attn_backend`` name dropped, and the compile backend we run in place of one we lack."""
        return self.model_copy(update={
            "device": str(self.resolved_device()),
            "cuda_graph_batch_sizes": self.graph_batch_sizes(),
            "attn_backend": self.attn_backend if _is_own_backend(self.attn_backend) else None,
            "compile_backend": self.compile_backend,
        })

    def unhonoured(self) -> List[Tuple[str, str]]:
        """``(key, why)`` for every setting that is accepted but does not (fully) take effect here."""
        notes: List[Tuple[str, str]] = []
        on_cpu = self.resolved_device().type == "cpu"
        if self.compile_backend in ("torch-cudagraph", "torch-opt") and on_cpu:
            notes.append(("compile_backend", f"{self.compile_backend} runs eagerly on the CPU (CUDA graphs need a GPU)"))
        dropped = [b for b in (self.cuda_graph_batch_sizes or []) if b > self.max_batch_size]
        if dropped:
            notes.append(("cuda_graph_batch_sizes", f"{dropped} exceed max_batch_size {self.max_batch_size} and are dropped: a graph batch larger than the state slots is never captured"))
        if self.attn_backend is not None and not _is_own_backend(self.attn_backend):
            notes.append(("attn_backend", f"{self.attn_backend!r} is an AutoDeploy backend; trtllm-flash runs its own attention op"))
        if self.model_factory != "NemotronFlashForCausalLM":
            notes.append(("model_factory", f"{self.model_factory}: trtllm-flash always builds NemotronFlashForCausalLM"))
        if self.mode != "graph":
            notes.append(("mode", f"{self.mode!r}: trtllm-flash always runs the exported graph"))
        flags = {
            "skip_loading_weights": (self.skip_loading_weights, "weights are always loaded (a preset is randomly initialised anyway)"),
            "trust_remote_code": (self.trust_remote_code, "trtllm-flash runs its own model code; no remote code is executed"),
            "skip_tokenizer_init": (self.skip_tokenizer_init, "the tokenizer is always built (it adds the memory tokens)"),
            "model_kwargs": (bool(self.model_kwargs), "config overrides are not applied; use a checkpoint directory or a preset"),
            "tokenizer_kwargs": (bool(self.tokenizer_kwargs), "tokenizer options are not applied"),
        }
        notes.extend((key, why) for key, (is_set, why) in flags.items() if is_set)
        kv = self.kv_cache_config
        if on_cpu and kv.max_tokens is None:
            notes.append(("kv_cache_config.free_gpu_memory_fraction", CPU_KV_NOTE))
        if kv.dtype != "auto":
            notes.append(("kv_cache_config.dtype", f"{kv.dtype!r}: the KV cache keeps the dtype the model is built with"))
        for key in ("enable_partial_reuse", "max_attention_window", "sink_token_length", "host_cache_size", "mamba_ssm_cache_dtype"):
            if getattr(kv, key) is not None:
                notes.append((f"kv_cache_config.{key}", "not supported by the trtllm-flash runtime; ignored"))
        return notes


def _is_own_backend(name: Optional[str]) -> bool:
    return name is not None and name.startswith("trtllm_flash")


# -- loading -------------------------------------------------------------------------------------


def load_yaml(path: str | Path) -> Dict[str, Any]:
    """The mapping in YAML file ``path``; a file that does not parse is a one-line error with its line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{line}: YAML does not parse: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: YAML does not parse: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of LlmArgs keys at the top level, got {type(data).__name__}")
    return data


def merge_dicts(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """``override`` over ``base``; nested dicts merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def nest_dotted(flat: Dict[str, Any]) -> Dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}`` (merged in order)."""
    nested: Dict[str, Any] = {}
    for key, value in flat.items():
        for part in reversed(str(key).split(".")[1:]):
            value = {part: value}
        nested = merge_dicts(nested, {str(key).split(".")[0]: value})
    return nested


def parse_dot_overrides(items: Sequence[str]) -> Dict[str, Any]:
    """``["a.b=value", ...]`` -> nested dict with YAML-typed values (``"[1, 2]"`` is a list)."""
    flat: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key.subkey=value")
        try:
            flat[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            flat[key] = text
    return nest_dotted(flat)


def validate_llm_args(data: Dict[str, Any]) -> LlmArgs:
    """``LlmArgs(**data)`` with a pydantic error turned into one line naming the key."""
    try:
        return LlmArgs(**data)
    except ValidationError as err:
        raise ValueError(one_line_error(err)) from None


def one_line_error(err: ValidationError) -> str:
    first = err.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if message.startswith("unknown key"):
        return message
    shown = first.get("input")
    got = f" (got {shown!r})" if not isinstance(shown, dict) and "got" not in message else ""
    return f"{location}: {message}{got}" if location else message


def load_llm_args(yaml_paths: Sequence[str | Path] = (), overrides: Optional[Dict[str, Any]] = None, **kwargs: Any) -> LlmArgs:
    """Merge ``yaml_paths`` in order, then ``overrides`` (dotted keys allowed), then ``kwargs``; validate."""
    data: Dict[str, Any] = {}
    for path in yaml_paths:
        data = merge_dicts(data, load_yaml(path))
    data = merge_dicts(data, nest_dotted(dict(overrides or {})))
    data = merge_dicts(data, {key: _plain(value) for key, value in kwargs.items()})
    return validate_llm_args(data)


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value
