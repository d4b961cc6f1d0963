"""Small configs and models shared by the tests of tests/model (fp32, CPU)."""
from __future__ import annotations

import torch

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.loading import random_model

SMALL = dict(
    vocab_size=300, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, kq_norm="rms", rope=True,
    mamba_d_state=8, mamba_expand=2, mamba2_headdim=8, mamba_d_conv=4, num_memory_tokens=2,
    ffn_expand_ratio=4, intermediate_size=0, tie_word_embeddings=True,
)


def small_config(layer_types, **overrides) -> NemotronFlashConfig:
    """A 32-wide config with the given layer types (window / FFN / head options via ``overrides``)."""
    values = dict(SMALL, num_hidden_layers=len(layer_types), layer_types=list(layer_types))
    values.update(overrides)
    return NemotronFlashConfig(**values)


def small_model(layer_types, seed: int = 0, **overrides):
    return random_model(small_config(layer_types, **overrides), seed=seed).eval()


def random_ids(config: NemotronFlashConfig, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    """Real-token ids ``[batch, seq]`` (no memory-token ids: the model prepends those on a sequence's first forward)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, config.vocab_size, (batch, seq), generator=gen)
