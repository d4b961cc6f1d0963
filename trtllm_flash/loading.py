"""Model and tokenizer loading for every entry point: preset names (seeded random init), checkpoint directories
(the published layout, see :mod:`trtllm_flash.checkpoint`) and locally cached Hugging Face ids."""
from __future__ import annotations

from typing import Union

import torch

# the checkpoint names callers import from here (the autodeploy factory, tests, demo scripts)
from trtllm_flash.checkpoint import (  # noqa: F401
    CONFIG_FILE, EMBED_KEY, LM_HEAD_KEY, MEMORY_KEY, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, checkpoint_state_dict,
    read_config, read_weights, resolve_checkpoint_dir, save_checkpoint, to_model_layout,
)
from trtllm_flash.config import NemotronFlashConfig, preset_names
from trtllm_flash.modeling import NemotronFlashForCausalLM
from trtllm_flash.tokenizer import NemotronFlashTokenizer, byte_level_tokenizer


def empty_model(config: NemotronFlashConfig, dtype: torch.dtype, device: Union[str, torch.device]) -> NemotronFlashForCausalLM:
    """The model with uninitialised parameters (see :meth:`NemotronFlashForCausalLM.empty`)."""
    return NemotronFlashForCausalLM.empty(config, dtype, device)


def random_model(config: NemotronFlashConfig, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu",
                 seed: int = 0) -> NemotronFlashForCausalLM:
    """A seeded random model (see :meth:`NemotronFlashForCausalLM.reset_parameters`)."""
    return empty_model(config, dtype, device).reset_parameters(seed)


def load_checkpoint(directory: str, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu"
                    ) -> NemotronFlashForCausalLM:
    """The model of a checkpoint directory; ``ValueError`` naming the file / key / tensor on a malformed one."""
    return NemotronFlashForCausalLM.from_pretrained(directory, dtype=dtype, device=device)


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
