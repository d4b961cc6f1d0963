"""Checkpoint directories laid out exactly like the published nvidia/Nemotron-Flash-3B-Instruct (sizes shrunk):
the published config.json key set, 2 safetensors shards + index, ``model.memory_tokens`` apart from the
embedding, no tied ``lm_head.weight``, tokenizer files, ``generation_config.json`` and remote-code ``.py`` files
that raise if anything imports them."""
from __future__ import annotations

import json
from pathlib import Path

from tokenizers import processors

from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.loading import random_model
from trtllm_flash.tokenizer import BOS, EOS, PAD, byte_level_backend

#: the keys of the published 3B config.json, verbatim from issue 15 (the 1B has the same set)
PUBLISHED_KEYS = {
    "architectures", "attention_dropout", "attn_hidden_size", "attn_implementation", "attn_implementation_new",
    "auto_map", "bos_token_id", "calc_logits_for_entire_prompt", "d_conv", "dtype", "eos_token_id",
    "ffn_expand_ratio", "global_attn_idx", "hidden_act", "hidden_size", "hybrid_decoder_layer", "initializer_range",
    "intermediate_size", "kq_head_dim", "kq_norm", "layer_type", "layer_types", "max_position_embeddings",
    "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "num_memory_tokens", "rms_norm_eps", "rope",
    "rope_theta", "rope_type", "sliding_window", "tie_word_embeddings", "transformers_version", "use_cache",
    "v_head_dim", "vocab_size",
    # "the mamba_* / mamba2_headdim keys": those the remote code's config writes
    "mamba2_headdim", "mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "mamba_conv_bias",
    "mamba_proj_bias", "mamba_inner_layernorms",
}

#: the 3B's structure ([deltanet,f,m2,f, a,f,m2,f] blocks, no mixer FFN, no q/k norm, all-global attention,
#: tied embeddings, memory tokens) at tiny sizes
TINY_3B = dict(
    vocab_size=320, hidden_size=64, intermediate_size=0, ffn_expand_ratio=3, num_hidden_layers=8,
    layer_types=["deltanet", "f", "m2", "f", "a", "f", "m2", "f"], num_attention_heads=4, num_key_value_heads=2,
    kq_norm="none", rope=True, rope_theta=10000.0, rope_type=None, sliding_window=None, global_attn_idx=[],
    mamba_d_state=8, mamba_d_conv=4, mamba_expand=2, mamba2_headdim=16, num_memory_tokens=4, rms_norm_eps=1e-6,
    tie_word_embeddings=True, max_position_embeddings=4096, bos_token_id=1, eos_token_id=2,
)

REMOTE_CODE_FILES = ("configuration_nemotron_flash.py", "modeling_nemotron_flash.py", "delta_net.py", "mamba2.py",
                     "fused_mha_with_cache.py")


def tiny_published_model(seed: int = 0, **overrides):
    return random_model(NemotronFlashConfig(**{**TINY_3B, **overrides}), seed=seed).eval()


def write_published_tokenizer(directory: Path, add_bos: bool = True) -> None:
    """``tokenizer.json`` (byte-level; with ``add_bos`` its post-processor prepends ``<s>`` as the published
    tokenizer's does), ``tokenizer_config.json`` and ``special_tokens_map.json``; no chat template (none ships)."""
    backend = byte_level_backend()
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", pair=f"{BOS} $A $B:1",
                                                               special_tokens=[(BOS, 1)])
    backend.save(str(directory / "tokenizer.json"))
    specials = {"bos_token": BOS, "eos_token": EOS, "pad_token": PAD}
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {**specials, "add_bos_token": add_bos, "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096}))
    (directory / "special_tokens_map.json").write_text(json.dumps(specials))


def write_published_checkpoint(directory: Path, model, num_shards: int = 2, add_bos: bool = True) -> Path:
    """``model`` saved in the published layout, with the files that ship beside the weights."""
    model.save_pretrained(directory, num_shards=num_shards, published_config=True)
    write_published_tokenizer(directory, add_bos)
    (directory / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "transformers_version": "4.56.2"}))
    for name in REMOTE_CODE_FILES:
        (directory / name).write_text(f'raise RuntimeError("remote code {name} must never be imported")\n')
    return directory
