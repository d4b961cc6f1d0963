"""Cached decoding and chunked prefill equal the full forward (fp32, max abs diff <= 1e-5) for every layer type."""
import pytest
import torch

from model_cases import random_ids, small_model

LAYER_SETS = {
    "deltanet": ["deltanet"],
    "mamba2": ["m2"],
    "attention_full": ["a"],
    "attention_window": ["a"],
    "hybrid": ["deltanet", "f", "m", "a", "a", "f"],
}
WINDOW = 5


def _model(name):
    extra = dict(sliding_window=WINDOW) if name in ("attention_window", "hybrid") else {}
    if name == "hybrid":
        extra["global_attn_idx"] = [4]
        extra["intermediate_size"] = 24
    return small_model(LAYER_SETS[name], **extra)


@torch.no_grad()
@pytest.mark.parametrize("name", sorted(LAYER_SETS))
def test_step_by_step_decode_equals_the_full_forward(name):
    model = _model(name)
    ids = random_ids(model.config, 2, 14)  # 14 > 2 * WINDOW: decode goes past the window
    full = model(ids)
    cache = model.new_cache()
    steps = [model(ids[:, t:t + 1], cache=cache) for t in range(ids.shape[1])]
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-5
    assert cache.seen_tokens == 14 + model.config.num_memory_tokens


@torch.no_grad()
@pytest.mark.parametrize("name", sorted(LAYER_SETS))
def test_chunked_prefill_equals_one_shot(name):
    model = _model(name)
    ids = random_ids(model.config, 2, 17, seed=1)
    full = model(ids)
    cache = model.new_cache()
    chunks = [model(ids[:, a:b], cache=cache) for a, b in ((0, 3), (3, 10), (10, 11), (11, 17))]
    assert (torch.cat(chunks, dim=1) - full).abs().max() <= 1e-5


@torch.no_grad()
def test_window_layers_keep_only_the_window():
    model = _model("attention_window")
    cache = model.new_cache()
    model(random_ids(model.config, 1, 12), cache=cache)  # + the memory tokens
    state = cache.layers[0]
    assert state.key.shape[1] == WINDOW - 1 and state.end == 12 + model.config.num_memory_tokens


@torch.no_grad()
def test_greedy_generate_equals_recomputing_the_argmax():
    model = _model("hybrid")
    prompt = random_ids(model.config, 2, 6, seed=2)
    out = model.generate(prompt, max_new_tokens=5)
    assert out.shape == (2, 11) and torch.equal(out[:, :6], prompt)
    for t in range(6, 11):
        assert torch.equal(out[:, t], model(out[:, :t])[:, -1].argmax(-1))


@torch.no_grad()
def test_sampling_is_seeded_and_eos_stops():
    model = _model("hybrid")
    prompt = random_ids(model.config, 1, 4, seed=3)
    a = model.generate(prompt, 6, temperature=1.0, top_k=20, top_p=0.9, seed=7)
    b = model.generate(prompt, 6, temperature=1.0, top_k=20, top_p=0.9, seed=7)
    assert torch.equal(a, b)
    first = model.generate(prompt, 1)[0, -1].item()
    stopped = model.generate(prompt, 6, eos_token_id=first)
    assert stopped.shape == (1, 5) and stopped[0, -1].item() == first
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 2, temperature=1.0, top_p=0.0)
