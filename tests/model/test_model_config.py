"""NemotronFlashConfig: presets, parameter counts (meta device), validation errors, JSON round trip."""
import pytest
import torch

from trtllm_flash.config import NemotronFlashConfig, preset_names
from trtllm_flash.loading import empty_model

PAPER_PARAMS = {"nemotron-flash-1b": 0.96e9, "nemotron-flash-3b": 2.7e9, "nemotron-flash-3b-tp": 2.7e9}


def _count(name):
    model = empty_model(NemotronFlashConfig.from_preset(name), torch.bfloat16, "meta")
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(PAPER_PARAMS))
def test_preset_parameter_counts_match_the_paper_within_5_percent(name):
    assert abs(_count(name) / PAPER_PARAMS[name] - 1) < 0.05


def test_presets_have_the_paper_shapes():
    shapes = {name: NemotronFlashConfig.from_preset(name) for name in PAPER_PARAMS}
    for name, config in shapes.items():
        assert config.num_memory_tokens == 256 and config.vocab_size == 131072 and config.tie_word_embeddings
    assert (shapes["nemotron-flash-1b"].hidden_size, shapes["nemotron-flash-1b"].num_hidden_layers) == (2048, 24)
    assert shapes["nemotron-flash-1b"].layer_types.count("a") == 2
    assert shapes["nemotron-flash-1b"].rope_type == "ntk"
    three = shapes["nemotron-flash-3b"]
    assert (three.hidden_size, three.num_hidden_layers, three.ffn_dim, three.head_dim) == (3072, 36, 9216, 128)
    assert [i for i, t in enumerate(three.layer_types) if t == "a"] == [4, 12, 20]
    assert [i for i, t in enumerate(three.layer_types) if t == "deltanet"] == [0, 8, 16, 24, 28, 32]
    assert (three.mamba_num_heads, three.mamba_conv_dim, three.kq_norm) == (96, 6400, "none")
    windows = [shapes["nemotron-flash-3b-tp"].layer_window(i) for i in (4, 12, 20)]
    assert sorted(windows) == [0, 8192, 8192]
    assert [three.layer_window(i) for i in (4, 12, 20)] == [0, 0, 0]


def test_tiny_preset_has_every_layer_type_a_window_and_memory_tokens():
    tiny = NemotronFlashConfig.from_preset("tiny")
    assert {"deltanet", "a", "f"} <= set(tiny.layer_types) and {"m", "m2"} & set(tiny.layer_types)
    windows = [tiny.layer_window(i) for i, t in enumerate(tiny.layer_types) if t == "a"]
    assert 0 in windows and any(0 < w <= 32 for w in windows)
    assert tiny.num_memory_tokens > 0 and 259 <= tiny.vocab_size <= 1024
    assert set(preset_names()) == {"tiny", "nemotron-flash-1b", "nemotron-flash-3b", "nemotron-flash-3b-tp"}


BASE = dict(vocab_size=300, hidden_size=32, num_hidden_layers=2, layer_types=["a", "f"], num_attention_heads=4,
            num_key_value_heads=2, ffn_expand_ratio=4)


@pytest.mark.parametrize("change, key", [
    (dict(layer_types=["a"]), "layer_types"),
    (dict(layer_types=["a", "x"]), "layer_types[1]"),
    (dict(num_attention_heads=5), "num_attention_heads"),
    (dict(num_key_value_heads=3), "num_key_value_heads"),
    (dict(global_attn_idx=[7]), "global_attn_idx"),
    (dict(global_attn_idx=[1]), "global_attn_idx"),
    (dict(kq_norm="layer"), "kq_norm"),
    (dict(mlp_hidden_act="gelu"), "mlp_hidden_act"),
    (dict(rope=True, rope_type="ntk"), "orig_max_position_embeddings"),
    (dict(layer_types=["m2", "f"], mamba2_headdim=24), "mamba2_headdim"),
])
def test_bad_values_raise_naming_the_key(change, key):
    with pytest.raises(ValueError, match=key.replace("[", r"\[").replace("]", r"\]")):
        NemotronFlashConfig(**{**BASE, **change})


def test_layer_window_rejects_non_attention_layers():
    config = NemotronFlashConfig(**BASE, sliding_window=8)
    assert config.layer_window(0) == 8
    with pytest.raises(ValueError, match="layer_idx 1"):
        config.layer_window(1)


def test_published_style_config_json_loads_unchanged(tmp_path):
    published = dict(BASE, attn_implementation_new="fused_mha", hybrid_decoder_layer="mamba", d_conv=4,
                     calc_logits_for_entire_prompt=False, layer_type=["a", "a"], mamba_dt_rank="auto",
                     num_experts=16, kq_head_dim=-1, v_head_dim=-1, global_attn_idx=[], rope=True)
    config = NemotronFlashConfig(**published)
    assert config.attn_implementation_new == "fused_mha" and config.d_conv == 4
    config.save_pretrained(tmp_path)
    again = NemotronFlashConfig.from_pretrained(tmp_path)
    assert again.layer_types == ["a", "f"] and again.ffn_dim == 128 and again.attn_implementation_new == "fused_mha"
