"""``NemotronFlashForCausalLM``: the eager pure-PyTorch reference of Nemotron-Flash (MODEL.md).

Parameter names follow the published checkpoints (``model.embed_tokens``, ``model.layers.{i}.<mixer>...``,
``model.final_layernorm``, ``lm_head``). Memory tokens are embedding rows ``vocab_size .. vocab_size + n - 1``
(the tokenizer prepends their ids), so the forward is plain tokens in, logits out.
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
        with _default_dtype(dtype), torch.device("meta"):
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
        """``input_ids [b, s]`` int64 -> logits ``[b, s, vocab_size]`` float32 (a plain tensor).

        ``position_ids [b, s]``: RoPE positions (default: ``arange`` continuing from ``cache.seen_tokens``).
        With ``cache`` the tokens continue the cached sequences (any number of tokens: decode or chunked
        prefill); the cache is updated in place.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
        start = cache.seen_tokens if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(start, start + input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        hidden_states = self.model(input_ids, position_ids, cache)
        if cache is not None:
            cache.seen_tokens += input_ids.shape[1]
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
    def from_pretrained(cls, pretrained_model_name_or_path, *_, dtype: torch.dtype = torch.float32,
                        device: str = "cpu", **__) -> "NemotronFlashForCausalLM":
        """Load a checkpoint directory or a locally cached Hugging Face id (published layout; see
        :mod:`trtllm_flash.checkpoint`)."""
        directory = resolve_checkpoint_dir(str(pretrained_model_name_or_path))
        model = cls.empty(read_config(directory), dtype, device)
        load_weights(model, directory)
        return model


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
