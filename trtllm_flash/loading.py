"""Model and tokenizer loading: preset names (seeded random init) and checkpoint directories (safetensors).

Checkpoint layout (the published one, which :func:`save_checkpoint` also writes): ``config.json`` plus
``model.safetensors`` or shards listed in ``model.safetensors.index.json``; ``model.embed_tokens.weight`` has
``vocab_size`` rows and the memory tokens are ``model.memory_tokens [n, hidden]``; ``lm_head.weight`` only when
untied. A merged table (``vocab_size + n`` rows, no ``model.memory_tokens``) loads too.
"""
from __future__ import annotations

import contextlib
import json
import os
from typing import Dict, Iterator, Union

import torch
from safetensors.torch import load_file, save_file

from trtllm_flash.config import NemotronFlashConfig, preset_names
from trtllm_flash.modeling import NemotronFlashForCausalLM
from trtllm_flash.tokenizer import NemotronFlashTokenizer, byte_level_tokenizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
EMBED_KEY = "model.embed_tokens.weight"
MEMORY_KEY = "model.memory_tokens"
LM_HEAD_KEY = "lm_head.weight"


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def empty_model(config: NemotronFlashConfig, dtype: torch.dtype, device: Union[str, torch.device]) -> NemotronFlashForCausalLM:
    """The model with uninitialised parameters of ``dtype`` directly on ``device`` (built on the meta device
    first, so no time is spent on throw-away initialisation)."""
    with _default_dtype(dtype), torch.device("meta"):
        model = NemotronFlashForCausalLM(config)
    model.to_empty(device=device)
    model.tie_embeddings()
    return model


def random_model(config: NemotronFlashConfig, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu",
                 seed: int = 0) -> NemotronFlashForCausalLM:
    """A seeded random model (see :meth:`NemotronFlashForCausalLM.reset_parameters`)."""
    return empty_model(config, dtype, device).reset_parameters(seed)


# ------------------------------------------------------------------------------------------------ checkpoints
def checkpoint_state_dict(model: NemotronFlashForCausalLM) -> Dict[str, torch.Tensor]:
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


def save_checkpoint(model: NemotronFlashForCausalLM, directory: str) -> None:
    """Write ``config.json`` and ``model.safetensors`` (published layout) into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    model.config.save_pretrained(directory)
    save_file({k: v.cpu() for k, v in checkpoint_state_dict(model).items()}, os.path.join(directory, WEIGHTS_FILE),
              metadata={"format": "pt"})


def read_config(directory: str) -> NemotronFlashConfig:
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{path} is missing: a checkpoint directory needs a {CONFIG_FILE}")
    with open(path) as f:
        values = json.load(f)
    values.pop("model_type", None)
    values.pop("architectures", None)
    return NemotronFlashConfig(**values)


def read_weights(directory: str) -> Dict[str, torch.Tensor]:
    """Every tensor of ``model.safetensors`` or of the shards named in ``model.safetensors.index.json``."""
    index = os.path.join(directory, WEIGHTS_INDEX_FILE)
    if os.path.isfile(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.isfile(os.path.join(directory, WEIGHTS_FILE)):
        files = [WEIGHTS_FILE]
    else:
        raise ValueError(f"{directory} has neither {WEIGHTS_FILE} nor {WEIGHTS_INDEX_FILE}")
    weights: Dict[str, torch.Tensor] = {}
    for name in files:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            raise ValueError(f"{path} (named in {WEIGHTS_INDEX_FILE}) is missing")
        weights.update(load_file(path))
    return weights


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


def load_checkpoint(directory: str, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu"
                    ) -> NemotronFlashForCausalLM:
    """The model of a checkpoint directory; ``ValueError`` naming the file / key on a missing, extra or
    wrongly shaped weight or a missing ``config.json``."""
    config = read_config(directory)
    weights = to_model_layout(read_weights(directory), config, directory)
    model = empty_model(config, dtype, device)
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
    return model


# ------------------------------------------------------------------------------------------------ entry points
def resolve_checkpoint_dir(name_or_path: str) -> str:
    """A local directory for ``name_or_path``: the directory itself, or a Hugging Face id already in the local
    HF cache. Anything else is a ``ValueError`` (nothing can be downloaded here)."""
    if os.path.isdir(name_or_path):
        return name_or_path
    if name_or_path.count("/") == 1 and not name_or_path.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(name_or_path, local_files_only=True)
        except Exception as err:  # noqa: BLE001  (any failure means: not in the local cache)
            raise ValueError(
                f"model {name_or_path!r} is not a local directory and not in the local Hugging Face cache; "
                f"downloads are impossible here. Use a preset ({', '.join(preset_names())}) or a checkpoint "
                f"directory ({type(err).__name__})") from err
    raise ValueError(f"model {name_or_path!r} is neither a preset ({', '.join(preset_names())}) nor a directory")


def load_model(name_or_path: str, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu",
               seed: int = 0) -> NemotronFlashForCausalLM:
    """A preset name (random init from ``seed``, built directly on ``device`` in ``dtype``) or a checkpoint
    directory / locally cached Hugging Face id."""
    if name_or_path in preset_names():
        return random_model(NemotronFlashConfig.from_preset(name_or_path), dtype, device, seed)
    return load_checkpoint(resolve_checkpoint_dir(name_or_path), dtype, device)


def load_tokenizer(name_or_path: str, config: NemotronFlashConfig) -> NemotronFlashTokenizer:
    """The byte-level tokenizer for a preset, else the ``tokenizer.json`` of the checkpoint directory, padded to
    ``config.vocab_size`` with ``config.num_memory_tokens`` memory tokens."""
    if name_or_path in preset_names():
        return byte_level_tokenizer(config.vocab_size, config.num_memory_tokens)
    return NemotronFlashTokenizer.load(resolve_checkpoint_dir(name_or_path), config.num_memory_tokens, config.vocab_size)
