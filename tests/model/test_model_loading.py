"""Checkpoints: safetensors round trip, separately stored memory tokens, clear errors; load_model / load_tokenizer."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from model_cases import random_ids, small_model
from trtllm_flash.loading import load_model, load_tokenizer
from trtllm_flash.modeling import NemotronFlashForCausalLM


@pytest.fixture()
def saved(tmp_path):
    model = small_model(["deltanet", "m2", "a", "f"], seed=3)
    model.save_pretrained(tmp_path)
    return model, tmp_path


@torch.no_grad()
def test_round_trip_gives_identical_logits_and_writes_the_published_layout(saved):
    model, path = saved
    weights = load_file(path / "model.safetensors")
    assert weights["model.embed_tokens.weight"].shape == (300, 32)
    assert weights["model.memory_tokens"].shape == (2, 32)
    assert "lm_head.weight" not in weights
    loaded = NemotronFlashForCausalLM.from_pretrained(str(path))
    ids = random_ids(model.config, 2, 7)
    assert torch.equal(loaded(ids), model(ids))
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert load_model(str(path), dtype=torch.bfloat16).model.embed_tokens.weight.dtype == torch.bfloat16


@torch.no_grad()
def test_merged_embedding_table_loads_too(saved):
    model, path = saved
    weights = load_file(path / "model.safetensors")
    memory = weights.pop("model.memory_tokens")
    weights["model.embed_tokens.weight"] = torch.cat([weights["model.embed_tokens.weight"], memory])
    save_file(weights, path / "model.safetensors")
    loaded = load_model(str(path))
    torch.testing.assert_close(loaded.model.embed_tokens.weight[300:], memory)


def _edit(path, change):
    weights = load_file(path / "model.safetensors")
    change(weights)
    save_file(weights, path / "model.safetensors")


@pytest.mark.parametrize("change, message", [
    (lambda w: w.pop("model.layers.1.mamba.A_log"), "model.layers.1.mamba.A_log is missing"),
    (lambda w: w.update({"model.layers.0.gla.g_proj.weight": torch.zeros(2)}), "unexpected weight model.layers.0.gla.g_proj"),
    (lambda w: w.update({"model.layers.2.self_attn.q_proj.weight": torch.zeros(3, 32)}), "q_proj.weight has shape"),
    (lambda w: w.update({"model.memory_tokens": torch.zeros(5, 32)}), "model.memory_tokens has shape"),
])
def test_bad_checkpoints_name_the_key(saved, change, message):
    _, path = saved
    _edit(path, change)
    with pytest.raises(ValueError, match=message):
        load_model(str(path))


def test_missing_config_and_unknown_names_are_clear(saved, tmp_path_factory):
    _, path = saved
    (path / "config.json").unlink()
    with pytest.raises(ValueError, match="config.json is missing"):
        load_model(str(path))
    with pytest.raises(ValueError, match="downloads are impossible"):
        load_model("nvidia/Nemotron-Flash-3B-Instruct-not-cached")
    with pytest.raises(ValueError, match="neither a preset"):
        load_model("no-such-preset")


def test_load_model_builds_presets_on_the_requested_dtype_and_the_tokenizer_fits():
    model = load_model("tiny", dtype=torch.bfloat16, seed=1)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    tokenizer = load_tokenizer("tiny", model.config)
    n = model.config.num_memory_tokens
    assert tokenizer.memory_token_ids == list(range(model.config.vocab_size, model.config.vocab_size + n))
    assert len(tokenizer) == model.model.embed_tokens.weight.shape[0]


def test_checkpoint_dir_tokenizer_round_trip(saved):
    model, path = saved
    from trtllm_flash.tokenizer import byte_level_tokenizer

    byte_level_tokenizer(300, 2).save_pretrained(path)
    tokenizer = load_tokenizer(str(path), model.config)
    assert tokenizer.encode("hi")[:2] == [300, 301]
    assert json.loads((path / "config.json").read_text())["model_type"] == "nemotron_flash"
