"""The Hugging Face way: ``NemotronFlashForCausalLM.from_pretrained(dir)`` and a forward / generate on real-token
ids only (no memory-token ids, no cache), as the published remote code is called, give the published model's
logits; no call can double or omit the memory tokens."""
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from trtllm_flash.modeling import NemotronFlashForCausalLM

N_MEM, VOCAB = 4, 320
MEMORY = list(range(VOCAB, VOCAB + N_MEM))
REAL = torch.tensor([[1, 72, 101, 108, 108, 111, 44], [1, 87, 111, 114, 108, 100, 33]])  # BOS + text, batch 2


@pytest.fixture(scope="module")
def hf_model(published_dir):
    return NemotronFlashForCausalLM.from_pretrained(str(published_dir)).eval()


@torch.no_grad()
def published_logits(model, published_dir, ids):
    """What the published remote code computes: the checkpoint's ``model.memory_tokens`` prepended at the
    embedding level, the decoder over positions 0 .. n+s-1, their outputs dropped after the final norm, logits
    divided by the lm_head row norms."""
    weights = {}
    for shard in sorted(published_dir.glob("model-*.safetensors")):
        weights.update(load_file(shard))
    embeds = F.embedding(ids, weights["model.embed_tokens.weight"])
    hidden = torch.cat([weights["model.memory_tokens"].expand(ids.shape[0], -1, -1), embeds], dim=1)
    positions = torch.arange(hidden.shape[1]).expand(ids.shape[0], -1)
    for layer in model.model.layers:
        hidden = layer(hidden, positions, None)
    hidden = model.model.final_layernorm(hidden)[:, N_MEM:]
    head = weights["model.embed_tokens.weight"]  # tied: lm_head.weight is absent from the checkpoint
    return (hidden @ head.T).float() / head.norm(dim=1)


@torch.no_grad()
def test_a_forward_on_real_token_ids_gives_the_published_models_logits(hf_model, published_dir):
    logits = hf_model(REAL)
    assert logits.shape == (2, 7, VOCAB) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, published_logits(hf_model, published_dir, REAL), rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_tokenizer_ids_with_the_memory_prefix_are_not_prefixed_again(hf_model):
    with_memory = torch.cat([torch.tensor(MEMORY).expand(2, -1), REAL], dim=1)
    logits = hf_model(with_memory)
    assert logits.shape == (2, N_MEM + 7, VOCAB)
    torch.testing.assert_close(logits[:, N_MEM:], hf_model(REAL), rtol=0, atol=0)


@torch.no_grad()
def test_hf_generate_on_real_ids_equals_cache_less_greedy_recomputation(hf_model, published_dir):
    out = hf_model.generate(REAL, max_new_tokens=6)
    assert out.shape == (2, 13) and torch.equal(out[:, :7], REAL)
    ids = REAL  # the remote code's generate: no cache, the whole sequence recomputed every step
    for _ in range(6):
        next_ids = published_logits(hf_model, published_dir, ids)[:, -1].argmax(-1)
        ids = torch.cat([ids, next_ids[:, None]], dim=1)
    assert torch.equal(out, ids)


@torch.no_grad()
def test_a_cached_continuation_adds_no_memory_tokens(hf_model):
    cache = hf_model.new_cache()
    first = hf_model(REAL[:, :4], cache=cache)
    rest = hf_model(REAL[:, 4:], cache=cache)
    assert cache.seen_tokens == N_MEM + 7
    torch.testing.assert_close(torch.cat([first, rest], dim=1), hf_model(REAL), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ids, message", [
    (torch.tensor([MEMORY[:3] + [1, 72]]), "not as the exact prefix"),                 # partial prefix
    (torch.tensor([MEMORY + MEMORY + [1, 72]]), "not as the exact prefix"),            # doubled prefix
    (torch.tensor([[1, 72, VOCAB, 101]]), "not as the exact prefix"),                  # memory id mid-sequence
    (torch.tensor([MEMORY + [1, 72], [1, 72, 73, 74, 75, 76]]), "not as the exact prefix"),  # rows disagree
    (torch.tensor([[1, VOCAB + N_MEM]]), r"must lie in \[0, 324\)"),                   # beyond the table
])
def test_ids_that_are_neither_way_are_refused(hf_model, ids, message):
    with pytest.raises(ValueError, match=message):
        hf_model(ids)


def test_memory_ids_in_a_continuing_forward_are_refused(hf_model):
    cache = hf_model.new_cache()
    hf_model(REAL[:, :3], cache=cache)
    with pytest.raises(ValueError, match=r"continue a cached sequence \(7 tokens seen\) but hold memory-token ids"):
        hf_model(torch.tensor([[VOCAB], [VOCAB]]), cache=cache)


def test_from_pretrained_dtype_options(published_dir):
    auto = NemotronFlashForCausalLM.from_pretrained(str(published_dir), dtype="auto")
    assert auto.model.embed_tokens.weight.dtype == torch.float32  # the config's dtype: the tiny model is saved fp32
    half = NemotronFlashForCausalLM.from_pretrained(published_dir, torch_dtype=torch.bfloat16, trust_remote_code=True)
    assert half.lm_head.weight.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype 'int8' is not one of"):
        NemotronFlashForCausalLM.from_pretrained(str(published_dir), dtype="int8")
    with pytest.raises(TypeError, match="device_map"):
        NemotronFlashForCausalLM.from_pretrained(str(published_dir), device_map="auto")
