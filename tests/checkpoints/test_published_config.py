"""config.json of published checkpoints: every published key loads, the remote code's kernel choice never reaches
transformers' attention dispatch, unknown keys are kept (debug report), a bad value is one line naming the file,
the key and the value."""
import json
import logging
import shutil
import sys

import pytest
import torch

from published import PUBLISHED_KEYS, REMOTE_CODE_FILES, TINY_3B, tiny_published_model, write_published_checkpoint
from trtllm_flash.checkpoint import published_config_dict
from trtllm_flash.config import KEY_KINDS, NemotronFlashConfig
from trtllm_flash.loading import load_checkpoint, read_config


def test_the_written_checkpoint_has_the_published_layout(published_dir, published_model):
    config = json.loads((published_dir / "config.json").read_text())
    assert set(config) == PUBLISHED_KEYS
    assert config["attn_implementation"] == config["attn_implementation_new"] == "fused_mha"
    assert config["layer_type"] == ["m", "a", "m", "a", "a", "a", "m", "a"]
    index = json.loads((published_dir / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert not (published_dir / "model.safetensors").exists()
    assert "model.memory_tokens" in index["weight_map"] and "lm_head.weight" not in index["weight_map"]
    for name in REMOTE_CODE_FILES + ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                     "generation_config.json"):
        assert (published_dir / name).is_file()


@torch.no_grad()
def test_load_checkpoint_gives_the_saved_model_without_importing_the_remote_code(published_dir, published_model):
    model = load_checkpoint(str(published_dir))
    ids = torch.tensor([[320, 321, 322, 323, 1, 72, 105, 33]])  # memory tokens, BOS, text
    assert torch.equal(model(ids), published_model(ids))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert not {name.removesuffix(".py") for name in REMOTE_CODE_FILES} & set(sys.modules)


def test_the_remote_code_keys_never_reach_the_attention_dispatch(published_dir):
    config = read_config(str(published_dir))
    assert config._attn_implementation is None
    assert not hasattr(config, "attn_implementation") and not hasattr(config, "layer_type")
    assert config.attn_implementation_new == "fused_mha" and config.d_conv == 4  # kept, not acted on
    assert config.layer_types == ["deltanet", "f", "m2", "f", "a", "f", "m2", "f"]


def _copy_with_config(src, dst, change):
    shutil.copytree(src, dst)
    values = json.loads((dst / "config.json").read_text())
    change(values)
    (dst / "config.json").write_text(json.dumps(values))
    return dst


def test_unknown_keys_are_kept_and_reported_at_debug_level(published_dir, tmp_path, caplog):
    path = _copy_with_config(published_dir, tmp_path / "ckpt", lambda v: v.update(brand_new_key=[1, 2], num_experts=16))
    with caplog.at_level(logging.DEBUG, logger="trtllm_flash.config"):
        config = read_config(str(path))
    assert config.brand_new_key == [1, 2] and config.num_experts == 16
    reports = [r for r in caplog.records if r.levelno == logging.DEBUG and "brand_new_key" in r.getMessage()]
    assert reports and "num_experts" not in reports[0].getMessage()  # a known remote-code leftover: not reported


@pytest.mark.parametrize("change, key, value", [
    (lambda v: v.update(hidden_size="64"), "hidden_size", "'64'"),
    (lambda v: v.update(num_memory_tokens="4"), "num_memory_tokens", "'4'"),
    (lambda v: v.update(rms_norm_eps="tiny"), "rms_norm_eps", "'tiny'"),
    (lambda v: v.update(rms_norm_eps=0), "rms_norm_eps", "0"),
    (lambda v: v.update(rope="yes"), "rope", "'yes'"),
    (lambda v: v.update(tie_word_embeddings=1), "tie_word_embeddings", "1"),
    (lambda v: v.update(layer_types="deltanet"), "layer_types", "'deltanet'"),
    (lambda v: v.update(num_hidden_layers=True), "num_hidden_layers", "True"),
    (lambda v: v.update(vocab_size=-5), "vocab_size", "-5"),
    (lambda v: v.update(ffn_expand_ratio=float("nan")), "ffn_expand_ratio", "nan"),
    (lambda v: v.update(rope_type="dynamic_ntk"), "rope_type", "'dynamic_ntk'"),
    (lambda v: v.update(rope_type="yarn"), "rope_type", "'yarn'"),
    (lambda v: v.update(rope_type="ntk"), "orig_max_position_embeddings", "None"),
    (lambda v: v.update(model_type="llama"), "model_type", "'llama'"),
    (lambda v: v.update(dtype="float99"), "dtype", "'float99'"),
])
def test_a_bad_value_is_one_line_naming_the_file_key_and_value(published_dir, tmp_path, change, key, value):
    path = _copy_with_config(published_dir, tmp_path / "ckpt", change)
    with pytest.raises(ValueError) as err:
        load_checkpoint(str(path))
    message = str(err.value)
    assert "\n" not in message and str(path / "config.json") in message and key in message and value in message


@pytest.mark.parametrize("text, expected", [
    ("[1, 2, 3]", "expected a JSON object of config keys, got a JSON array"),
    ('{"hidden_size": 64,', "is not valid JSON: Expecting property name enclosed in double quotes at line 1"),
])
def test_a_config_that_is_not_a_json_object_names_the_file(published_dir, tmp_path, text, expected):
    path = tmp_path / "ckpt"
    shutil.copytree(published_dir, path)
    (path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=str(path / "config.json") + ".*" + expected.replace("[", r"\[")):
        load_checkpoint(str(path))


@torch.no_grad()
def test_the_1b_layout_single_file_with_ntk_rope_loads(tmp_path):
    model = tiny_published_model(seed=3, rope_type="ntk", orig_max_position_embeddings=512, max_position_embeddings=2048)
    path = write_published_checkpoint(tmp_path / "1b", model, num_shards=1)
    values = json.loads((path / "config.json").read_text())
    assert set(values) == PUBLISHED_KEYS | {"orig_max_position_embeddings"} and (path / "model.safetensors").is_file()
    loaded = load_checkpoint(str(path))
    assert (loaded.config.rope_type, loaded.config.orig_max_position_embeddings) == ("ntk", 512)
    ids = torch.tensor([[320, 321, 322, 323, 1, 72, 105, 33, 40, 41]])
    assert torch.equal(loaded(ids), model(ids))


def test_preset_configs_write_every_published_key_and_read_back_the_same_model():
    for name in ("nemotron-flash-1b", "nemotron-flash-3b"):
        config = NemotronFlashConfig.from_preset(name)
        values = published_config_dict(config, torch.bfloat16)
        assert PUBLISHED_KEYS <= set(values) and values["dtype"] == "bfloat16"
        again = NemotronFlashConfig(**values)
        assert {k: getattr(again, k) for k in KEY_KINDS} == {k: getattr(config, k) for k in KEY_KINDS}


def test_ntk_rope_frequencies_are_the_published_codes_exactly():
    config = NemotronFlashConfig(**{**TINY_3B, "rope_type": "ntk", "orig_max_position_embeddings": 512,
                                    "max_position_embeddings": 2048})
    from trtllm_flash.modeling.attention import NemotronFlashAttention

    dim = config.head_dim
    # the remote code: base * ((factor * max / orig) - (factor - 1)) ** (dim / (dim - 2)), factor 2
    base = config.rope_theta * ((2 * 2048 / 512) - 1) ** (dim / (dim - 2))
    expected = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rotary = NemotronFlashAttention(config, 4).rotary_emb
    assert torch.equal(rotary.inv_freq(torch.device("cpu")), expected)
