"""The whole standalone path — ``LLM`` -> Engine (continuous batching, chunked prefill, more prompts than
slots) -> built model — against greedy decoding with the eager reference recomputing every sequence
from scratch (CPU, tiny preset, fp32): the tokens must be identical."""
import torch

from trtllm_flash.llm import LLM, SamplingParams
from trtllm_flash.loading import load_model

PROMPTS = [
    "Hello, my name is",
    "The capital of France is",
    "1 2 3 4",
    "x",
    "a longer prompt that needs several prefill chunks of sixteen tokens each, and then some",
]
NEW_TOKENS = 8


def reference_greedy(model, ids, steps):
    ids, out = list(ids), []
    with torch.no_grad():
        for _ in range(steps):
            token = int(model(torch.tensor([ids]))[0, -1].argmax())
            out.append(token)
            ids.append(token)
    return out


def test_llm_generate_matches_the_reference_token_for_token():
    llm = LLM(
        "tiny", device="cpu", dtype="float32", max_batch_size=3, max_seq_len=160, max_num_tokens=16,
        enable_chunked_prefill=True, kv_cache_config={"tokens_per_block": 8, "max_tokens": 1024}, progress=None,
    )
    outputs = llm.generate(PROMPTS, SamplingParams(max_tokens=NEW_TOKENS, ignore_eos=True))
    reference = load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()
    for out in outputs:
        assert out.outputs[0].token_ids == reference_greedy(reference, out.prompt_token_ids, NEW_TOKENS), out.prompt
    stats = llm.engine.stats
    assert stats["num_used_pages"] == 0 and stats["num_used_slots"] == 0
