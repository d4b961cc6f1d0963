"""Checkpoint directories on disk: reading and writing the published Nemotron-Flash layout.

Layout (nvidia/Nemotron-Flash-1B and -3B-Instruct): ``config.json``; the weights in ``model.safetensors`` or in
shards listed by ``model.safetensors.index.json`` (``{"weight_map": {tensor: file}}``);
``model.embed_tokens.weight`` has ``vocab_size`` rows and the memory tokens are a tensor of their own,
``model.memory_tokens [n, hidden]``; ``lm_head.weight`` only when untied. A merged table (``vocab_size + n``
rows, no ``model.memory_tokens``) loads too. Tokenizer files, ``generation_config.json`` and the remote-code
``.py`` files may sit beside them: the ``.py`` files are never imported.

Every malformed file is one ``ValueError`` line naming the file and, where there is one, the key or tensor.
This module knows the model only through its ``state_dict`` and ``config`` (it does not import
:mod:`trtllm_flash.modeling`, which imports it).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from trtllm_flash.checkpoints import shipped_checkpoint_dir, shipped_names
from trtllm_flash.config import NemotronFlashConfig, preset_names

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
EMBED_KEY = "model.embed_tokens.weight"
MEMORY_KEY = "model.memory_tokens"
LM_HEAD_KEY = "lm_head.weight"
FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

#: the keys of the published config.json files (nvidia/Nemotron-Flash-3B-Instruct; the 1B has the same set)
PUBLISHED_CONFIG_KEYS = (
    "architectures", "attention_dropout", "attn_hidden_size", "attn_implementation", "attn_implementation_new",
    "auto_map", "bos_token_id", "calc_logits_for_entire_prompt", "d_conv", "dtype", "eos_token_id",
    "ffn_expand_ratio", "global_attn_idx", "hidden_act", "hidden_size", "hybrid_decoder_layer",
    "initializer_range", "intermediate_size", "kq_head_dim", "kq_norm", "layer_type", "layer_types",
    "mamba2_headdim", "mamba_conv_bias", "mamba_d_conv", "mamba_d_state", "mamba_dt_rank", "mamba_expand",
    "mamba_inner_layernorms", "mamba_proj_bias", "max_position_embeddings", "num_attention_heads",
    "num_hidden_layers", "num_key_value_heads", "num_memory_tokens", "rms_norm_eps", "rope", "rope_theta",
    "rope_type", "sliding_window", "tie_word_embeddings", "transformers_version", "use_cache", "v_head_dim",
    "vocab_size",
)


# ------------------------------------------------------------------------------------------------ reading
def read_json(path: str) -> Any:
    """The JSON value in ``path``; invalid JSON is a ``ValueError`` naming the path, line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: not UTF-8 text ({err.reason} at byte {err.start})") from None


def read_config(directory: str) -> NemotronFlashConfig:
    """The :class:`NemotronFlashConfig` of ``directory/config.json`` (every published key loads; see
    :mod:`trtllm_flash.config`). A missing file, invalid JSON, a non-object, another ``model_type`` or a key with
    a wrong type or value is a ``ValueError`` naming the file, the key and the value."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{path} is missing: a checkpoint directory needs a {CONFIG_FILE}")
    values = read_json(path)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object of config keys, got a JSON {_json_kind(values)}")
    model_type = values.pop("model_type", NemotronFlashConfig.model_type)
    if model_type != NemotronFlashConfig.model_type:
        raise ValueError(f"{path}: model_type {model_type!r} is not {NemotronFlashConfig.model_type!r}")
    try:
        return NemotronFlashConfig(**values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "null")


def weight_files(directory: str) -> List[str]:
    """The safetensors files of ``directory``: the shards named in the index, else ``model.safetensors``."""
    index = os.path.join(directory, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        values = read_json(index)
        weight_map = values.get("weight_map") if isinstance(values, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ValueError(f"{index}: no 'weight_map' object naming the shard of each tensor")
        files = sorted(set(weight_map.values()))
        for name in files:
            if not isinstance(name, str) or not os.path.isfile(os.path.join(directory, name)):
                raise ValueError(f"{os.path.join(directory, str(name))} is missing (named in {WEIGHTS_INDEX_FILE})")
        return files
    if os.path.isfile(os.path.join(directory, WEIGHTS_FILE)):
        return [WEIGHTS_FILE]
    raise ValueError(f"{directory} has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}")


def read_weights(directory: str) -> Dict[str, torch.Tensor]:
    """Every tensor of the checkpoint's safetensors files. A file that is empty, truncated or corrupt, a tensor
    that is not floating point, or one holding NaN / Inf is a ``ValueError`` naming the file and the tensor."""
    weights: Dict[str, torch.Tensor] = {}
    for name in weight_files(directory):
        path = os.path.join(directory, name)
        for key, tensor in _read_safetensors(path).items():
            if key in weights:
                raise ValueError(f"{path}: tensor {key} is also in another shard")
            weights[key] = tensor
    return weights


def _read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty (0 bytes): not a safetensors file")
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {_truncated_tensor(path) or _first_line(err)}") from None
    for key, tensor in tensors.items():
        if tensor.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{path}: tensor {key} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                             f"weights must be float32, bfloat16 or float16")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{path}: tensor {key} holds NaN or Inf values")
    return tensors


def _truncated_tensor(path: str) -> Optional[str]:
    """For a file whose header reads but whose data ends early: which tensor is cut off (else None)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= size - 8:
            return None
        try:
            header = json.loads(f.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    available = size - 8 - length
    cut = [(key, info["data_offsets"][1]) for key, info in header.items()
           if isinstance(info, dict) and isinstance(info.get("data_offsets"), list) and info["data_offsets"][1] > available]
    if not cut:
        return None
    key, end = min(cut, key=lambda item: item[1])
    return f"truncated: tensor {key} needs {end} data bytes but the file holds {available}"


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def to_model_layout(weights: Dict[str, torch.Tensor], config: NemotronFlashConfig, source: str) -> Dict[str, torch.Tensor]:
    """Merge ``model.memory_tokens`` into the embedding rows; drop a tied ``lm_head.weight`` duplicate."""
    weights = dict(weights)
    if EMBED_KEY not in weights:
        raise ValueError(f"{source}: weight {EMBED_KEY} is missing")
    memory = weights.pop(MEMORY_KEY, None)
    if memory is not None:
        if memory.dim() != 2 or memory.shape[0] != config.num_memory_tokens:
            raise ValueError(f"{source}: {MEMORY_KEY} has shape {tuple(memory.shape)}, expected "
                             f"[{config.num_memory_tokens}, {config.hidden_size}] (num_memory_tokens)")
        weights[EMBED_KEY] = torch.cat([weights[EMBED_KEY], memory.to(weights[EMBED_KEY].dtype)], dim=0)
    if config.tie_word_embeddings and LM_HEAD_KEY in weights:
        head = weights.pop(LM_HEAD_KEY)
        if tuple(head.shape) not in ((config.vocab_size, config.hidden_size), tuple(weights[EMBED_KEY].shape)):
            raise ValueError(f"{source}: weight {LM_HEAD_KEY} has shape {tuple(head.shape)}, expected "
                             f"[{config.vocab_size}, {config.hidden_size}]")
    return weights


def load_weights(model: torch.nn.Module, directory: str) -> None:
    """Fill ``model`` (a ``NemotronFlashForCausalLM``) with the weights of checkpoint ``directory``; a missing,
    extra or wrongly shaped weight is a ``ValueError`` naming it."""
    config = model.config
    weights = to_model_layout(read_weights(directory), config, directory)
    expected = {k: v for k, v in model.state_dict().items() if not (k == LM_HEAD_KEY and config.tie_word_embeddings)}
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing:
        raise ValueError(f"{directory}: weight {missing[0]} is missing ({len(missing)} missing in all)")
    if extra:
        raise ValueError(f"{directory}: unexpected weight {extra[0]} ({len(extra)} unexpected in all)")
    for key, param in expected.items():
        if tuple(weights[key].shape) != tuple(param.shape):
            raise ValueError(f"{directory}: weight {key} has shape {tuple(weights[key].shape)}, expected {tuple(param.shape)}")
    with torch.no_grad():
        for key, param in expected.items():
            param.copy_(weights[key])


def resolve_checkpoint_dir(name_or_path: str) -> str:
    """A local directory for ``name_or_path``: the directory itself, a checkpoint shipped in the package
    (:mod:`trtllm_flash.checkpoints`, e.g. ``nemotron-flash-demo``), or a Hugging Face id (``org/name``) already in
    the local HF cache. Anything else is a ``ValueError`` saying which (nothing can be downloaded here)."""
    if os.path.isdir(name_or_path):
        return name_or_path
    shipped = shipped_checkpoint_dir(name_or_path)
    if shipped is not None:
        return shipped
    if os.path.exists(name_or_path):
        raise ValueError(f"model {name_or_path!r} is a file, not a checkpoint directory")
    looks_like_path = name_or_path.startswith((".", "/", "~")) or os.sep in name_or_path.strip("/").replace("/", "", 1)
    if name_or_path.count("/") == 1 and not looks_like_path:
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(name_or_path, local_files_only=True)
        except Exception as err:  # noqa: BLE001  (any failure means: not in the local cache)
            raise ValueError(
                f"model {name_or_path!r}: no such directory, and not in the local Hugging Face cache (downloads are "
                f"impossible here). Use a preset ({', '.join(preset_names() + shipped_names())}) or a checkpoint directory "
                f"({type(err).__name__})") from None
    if looks_like_path or "/" in name_or_path:
        raise ValueError(f"model {name_or_path!r}: no such directory")
    raise ValueError(f"model {name_or_path!r} is neither a preset ({', '.join(preset_names() + shipped_names())}) nor a directory")


# ------------------------------------------------------------------------------------------------ writing
def checkpoint_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The model's weights in the published layout (memory tokens split off, tied lm_head omitted)."""
    config = model.config
    state = {}
    for name, tensor in model.state_dict().items():
        if name == LM_HEAD_KEY and config.tie_word_embeddings:
            continue
        state[name] = tensor.detach().contiguous().clone()
    table = state.pop(EMBED_KEY)
    state[EMBED_KEY] = table[: config.vocab_size].clone()
    if config.num_memory_tokens:
        state[MEMORY_KEY] = table[config.vocab_size:].clone()
    return state


def published_config_dict(config: NemotronFlashConfig, dtype: torch.dtype) -> Dict[str, Any]:
    """``config.json`` as the published checkpoints write it: exactly :data:`PUBLISHED_CONFIG_KEYS` (with the
    remote code's own keys: ``attn_implementation(_new)="fused_mha"``, ``auto_map``, the derived ``layer_type``
    ...), plus ``orig_max_position_embeddings`` / ``mlp_hidden_act`` / ``pad_token_id`` when they differ from the
    remote code's defaults (the published files need none of them but a model using them does)."""
    remote = {
        "architectures": ["NemotronFlashForCausalLM"],
        "attn_implementation": "fused_mha",
        "attn_implementation_new": "fused_mha",
        "auto_map": {"AutoConfig": "configuration_nemotron_flash.NemotronFlashConfig",
                     "AutoModelForCausalLM": "modeling_nemotron_flash.NemotronFlashForCausalLM"},
        "calc_logits_for_entire_prompt": False,
        "d_conv": 4,
        "dtype": str(dtype).removeprefix("torch."),
        "hidden_act": "silu",
        "hybrid_decoder_layer": "mamba",
        "layer_type": ["a" if t in ("a", "f") else "m" for t in config.layer_types],
        "mamba_conv_bias": True,
        "mamba_dt_rank": math.ceil(config.hidden_size / 16),
        "mamba_inner_layernorms": True,
        "mamba_proj_bias": False,
        "transformers_version": "4.56.2",
        "use_cache": True,
    }
    values = {key: remote[key] if key in remote else getattr(config, key) for key in PUBLISHED_CONFIG_KEYS}
    for key, default in (("orig_max_position_embeddings", None), ("mlp_hidden_act", "silu"), ("pad_token_id", 0)):
        if getattr(config, key) != default:
            values[key] = getattr(config, key)
    return values


def save_checkpoint(model: torch.nn.Module, directory: str, num_shards: int = 1, published_config: bool = False) -> None:
    """Write ``model`` (a ``NemotronFlashForCausalLM``) into ``directory`` in the published weight layout:
    ``model.safetensors``, or ``num_shards`` files ``model-0000i-of-0000n.safetensors`` plus
    ``model.safetensors.index.json``. ``config.json`` is our config (``save_pretrained``), or with
    ``published_config`` the published key set (:func:`published_config_dict`)."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    os.makedirs(directory, exist_ok=True)
    state = {k: v.cpu() for k, v in checkpoint_state_dict(model).items()}
    if published_config:
        _write_json(os.path.join(directory, CONFIG_FILE), published_config_dict(model.config, next(iter(state.values())).dtype))
    else:
        model.config.save_pretrained(directory)
    if num_shards == 1:
        save_file(state, os.path.join(directory, WEIGHTS_FILE), metadata={"format": "pt"})
        return
    shards = _split(state, num_shards)
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{num_shards:05d}.safetensors"
        save_file(shard, os.path.join(directory, name), metadata={"format": "pt"})
        weight_map.update({key: name for key in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    _write_json(os.path.join(directory, WEIGHTS_INDEX_FILE), {"metadata": {"total_size": total}, "weight_map": weight_map})


def _split(state: Mapping[str, torch.Tensor], num_shards: int) -> List[Dict[str, torch.Tensor]]:
    """``state`` in ``num_shards`` non-empty groups of consecutive tensors (equal counts, not bytes)."""
    if num_shards > len(state):
        raise ValueError(f"num_shards {num_shards} exceeds the {len(state)} tensors of the checkpoint")
    items = list(state.items())
    bounds = [i * len(items) // num_shards for i in range(num_shards + 1)]
    return [dict(items[bounds[i]:bounds[i + 1]]) for i in range(num_shards)]


def _write_json(path: str, values: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True)
        f.write("\n")
