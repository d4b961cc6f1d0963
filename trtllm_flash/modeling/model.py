"""``NemotronFlashForCausalLM``: the eager pure-PyTorch reference of Nemotron-Flash (MODEL.md).

Parameter names follow the published checkpoints (``model.embed_tokens``, ``model.layers.{i}.<mixer>...``,
``model.final_layernorm``, ``lm_head``). Memory tokens are embedding rows ``vocab_size .. vocab_size + n - 1``:
the tokenizer prepends their ids, or :meth:`NemotronFlashForCausalLM.forward` prepends them to real-token ids
the Hugging Face way (see :mod:`trtllm_flash.modeling.memory_tokens`).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel

from trtllm_flash.checkpoint import load_weights, read_config, resolve_checkpoint_dir, save_checkpoint
from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.modeling.cache import NemotronFlashCache
from trtllm_flash.modeling.decoder import NemotronFlashDecoderLayer
from trtllm_flash.modeling.generation import generate_tokens
from trtllm_flash.modeling.init import init_weights
from trtllm_flash.modeling.memory_tokens import memory_prefix_to_add, prepend_memory
from trtllm_flash.modeling.norms import RMSNorm


class NemotronFlashModel(nn.Module):
    """Embedding (``vocab_size + num_memory_tokens`` rows), decoder layers, ``final_layernorm``."""

    def __init__(self, config: NemotronFlashConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size + config.num_memory_tokens, config.hidden_size)
        self.layers = nn.ModuleList(NemotronFlashDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor,
                cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        """``input_ids, position_ids [b, s]`` -> normalised hidden states ``[b, s, hidden]``."""
        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, position_ids, cache)
        return self.final_layernorm(hidden_states)


class NemotronFlashForCausalLM(PreTrainedModel):
    """Nemotron-Flash causal LM.

    ``lm_head.weight`` is the embedding table itself when ``tie_word_embeddings`` (``[vocab + n_mem, hidden]``;
    only the first ``vocab_size`` rows produce logits), else its own ``[vocab_size, hidden]``.
    Logits are weight-normalised like the published model: ``(h @ W^T) / ||W_row||_2`` in fp32.
    """

    config_class = NemotronFlashConfig
    base_model_prefix = "model"
    _no_split_modules = ["NemotronFlashDecoderLayer"]

    def __init__(self, config: NemotronFlashConfig):
        super().__init__(config)
        self.model = NemotronFlashModel(config)
        head_rows = config.vocab_size + (config.num_memory_tokens if config.tie_word_embeddings else 0)
        self.lm_head = nn.Linear(config.hidden_size, head_rows, bias=False)
        self.tie_embeddings()

    @classmethod
    def empty(cls, config: NemotronFlashConfig, dtype: torch.dtype = torch.float32,
              device: Union[str, torch.device] = "cpu") -> "NemotronFlashForCausalLM":
        """The model with uninitialised parameters of ``dtype`` directly on ``device`` (built on the meta device
        first, so no time is spent on throw-away initialisation)."""
        with default_dtype(dtype), torch.device("meta"):
            model = cls(config)
        model.to_empty(device=device)
        model.tie_embeddings()
        return model

    def tie_embeddings(self) -> None:
        """Make ``lm_head.weight`` the embedding parameter when the config ties them (no-op otherwise)."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def reset_parameters(self, seed: int = 0) -> "NemotronFlashForCausalLM":
        """Seeded random init of every parameter (see :func:`trtllm_flash.modeling.init.init_weights`)."""
        init_weights(self, self.config.initializer_range, seed)
        return self

    def new_cache(self) -> NemotronFlashCache:
        """An empty per-layer cache for :meth:`forward` / :meth:`generate`."""
        return NemotronFlashCache(self.config.num_hidden_layers)

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
                cache: Optional[NemotronFlashCache] = None) -> torch.Tensor:
        """``input_ids [b, s]`` int64 -> logits ``[b, s, vocab_size]`` float32 (a plain tensor), one row per id passed.

        Without ``position_ids`` (the Hugging Face way and our :meth:`generate`): positions continue from
        ``cache.seen_tokens``, and on a sequence's first forward (no cache or an empty one) ids holding no
        memory-token id get the memory tokens prepended at the embedding level, their outputs dropped -- the
        published model's logits for exactly those tokens; ids that start with the memory-token ids (the tokenizer's)
        are taken as they are; anything else is a ``ValueError`` (see :mod:`trtllm_flash.modeling.memory_tokens`).

        With ``position_ids [b, s]`` (the graph convention the export, AutoDeploy and the runtime use): the caller has
        laid the sequence out, memory tokens included; the ids are taken exactly as given.

        With ``cache`` the tokens continue the cached sequences (any number of tokens: decode or chunked
        prefill); the cache is updated in place.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
        start = cache.seen_tokens if cache is not None else 0
        added = 0
        if position_ids is None:
            added = memory_prefix_to_add(input_ids, self.config, start)
            if added:
                input_ids = prepend_memory(input_ids, self.config)
            position_ids = torch.arange(start, start + input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        hidden_states = self.model(input_ids, position_ids, cache)
        if cache is not None:
            cache.seen_tokens += input_ids.shape[1]
        if added:  # (no slice node in the exported graph)
            hidden_states = hidden_states[:, added:]
        return self.logits(hidden_states)

    def logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``[b, s, hidden]`` -> ``[b, s, vocab]`` fp32, each logit divided by the L2 norm of its lm_head row."""
        weight = self.lm_head.weight[: self.config.vocab_size]
        row_norm = torch.linalg.vector_norm(weight, ord=2, dim=1, dtype=torch.float32)
        return F.linear(hidden_states, weight).float() / row_norm

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, eos_token_id: Optional[int] = None, seed: Optional[int] = None) -> torch.Tensor:
        """Prompt ``[b, s]`` -> prompt + up to ``max_new_tokens`` tokens ``[b, s + n]`` (cached decoding; see
        :func:`trtllm_flash.modeling.generation.generate_tokens`)."""
        return generate_tokens(self, input_ids, max_new_tokens, temperature, top_k, top_p, eos_token_id, seed)

    def save_pretrained(self, save_directory, num_shards: int = 1, published_config: bool = False, **_) -> None:
        """Write the checkpoint in the published layout (see :func:`trtllm_flash.checkpoint.save_checkpoint`)."""
        save_checkpoint(self, str(save_directory), num_shards=num_shards, published_config=published_config)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, dtype: Union[str, torch.dtype, None] = None,
                        device: Union[str, torch.device] = "cpu", torch_dtype: Union[str, torch.dtype, None] = None,
                        trust_remote_code: bool = False) -> "NemotronFlashForCausalLM":
        """Load a checkpoint directory or a locally cached Hugging Face id in the published layout (see
        :mod:`trtllm_flash.checkpoint`). ``dtype`` (alias ``torch_dtype``): a ``torch.dtype``, its name, or
        ``"auto"`` for the config's ``dtype``; default float32. ``trust_remote_code`` is accepted for Hugging Face
        compatibility and changes nothing: the checkpoint's ``.py`` files are never imported."""
        del trust_remote_code
        if dtype is not None and torch_dtype is not None:
            raise TypeError("pass dtype or torch_dtype, not both")
        directory = resolve_checkpoint_dir(str(pretrained_model_name_or_path))
        config = read_config(directory)
        model = cls.empty(config, _load_dtype(dtype if dtype is not None else torch_dtype, config), device)
        load_weights(model, directory)
        return model


_DTYPE_NAMES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _load_dtype(dtype: Union[str, torch.dtype, None], config: NemotronFlashConfig) -> torch.dtype:
    """``None`` -> float32; ``"auto"`` -> the config's ``dtype``; a name or float ``torch.dtype`` -> itself."""
    if dtype is None:
        return torch.float32
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or torch.float32
    if isinstance(dtype, str):
        if dtype.removeprefix("torch.") not in _DTYPE_NAMES:
            raise ValueError(f"dtype {dtype!r} is not one of {sorted(_DTYPE_NAMES)} or 'auto'")
        return _DTYPE_NAMES[dtype.removeprefix("torch.")]
    if dtype not in _DTYPE_NAMES.values():
        raise ValueError(f"dtype {dtype} is not one of {sorted(_DTYPE_NAMES)}")
    return dtype


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Parameters created inside are of ``dtype`` (restores the previous default on exit)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
