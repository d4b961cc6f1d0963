"""Several greedy decode steps per launch (``decode_steps_per_launch``): the tokens are those of one step
per launch, stop conditions stay exact, and only decode-only all-greedy batches take the k-step path."""
from __future__ import annotations

import pytest
import torch

from runtime_fakes import make_engine, reference_generate, run_all
from trtllm_flash.sampling_params import SamplingParams


def _tokens_per_delta(engine, requests, params):
    """Run ``requests`` to the end; the number of tokens of every delta that brought tokens, and the results."""
    sizes, results = [], {rid: [] for rid in requests}
    for rid, prompt in requests.items():
        engine.add_request(rid, prompt, params[rid])
    while engine.has_unfinished_requests():
        for delta in engine.step():
            results[delta.request_id].extend(delta.new_token_ids)
            if delta.new_token_ids:
                sizes.append(len(delta.new_token_ids))
    return sizes, results


@pytest.mark.parametrize("no_overlap", [False, True], ids=["overlap", "no_overlap"])
def test_k_steps_per_launch_and_max_tokens_exact(no_overlap):
    engine = make_engine(disable_overlap_scheduler=no_overlap, decode_steps_per_launch=4)
    prompts = {"a": [5, 9, 1, 33, 2, 7], "b": [1, 2]}
    params = {"a": SamplingParams(max_tokens=10), "b": SamplingParams(max_tokens=7)}
    sizes, results = _tokens_per_delta(engine, prompts, params)
    for rid, prompt in prompts.items():
        assert results[rid] == reference_generate(prompt, params[rid].max_tokens)
    assert 4 in sizes  # 4-step launches ran: 1 (prefill) + 4 + 4 + 1 tokens for a, 1 + 4 + 1 + 1 for b
    assert len(engine.model.batches) == 10  # no forward beyond max_tokens: 1 prefill + 9 decode steps
    assert engine.cache_manager.num_used_pages == 0 and engine.cache_manager.num_used_slots == 0


def test_a_sampled_request_keeps_the_batch_at_one_step():
    engine = make_engine(decode_steps_per_launch=4)
    params = {"g": SamplingParams(max_tokens=9), "s": SamplingParams(max_tokens=9, temperature=1.0, seed=3)}
    sizes, results = _tokens_per_delta(engine, {"g": [3, 4, 5], "s": [6, 7]}, params)
    assert set(sizes) == {1}
    assert results["g"] == reference_generate([3, 4, 5], 9)


def test_tiny_preset_k4_gives_the_tokens_of_k1_with_requests_joining_mid_stream():
    """The real model (tiny preset, CPU, fp32) through the CUDA-graph runner's eager path: 5 prompts on 3
    slots with chunked prefill (so prefill chunks join while others decode), k = 4 vs k = 1."""
    from trtllm_flash.build import build_model
    from trtllm_flash.llm import LLM
    from trtllm_flash.llm_args import load_llm_args
    from trtllm_flash.loading import load_tokenizer

    settings = dict(model="tiny", device="cpu", dtype="float32", max_batch_size=3, max_seq_len=96, max_num_tokens=16,
                    enable_chunked_prefill=True, compile_backend="torch-cudagraph",
                    kv_cache_config={"tokens_per_block": 8, "max_tokens": 1024})
    built = build_model(load_llm_args([], **settings).for_build(), progress=None)
    tokenizer = load_tokenizer("tiny", built.config)
    calls = []
    decode_steps = built.decode_steps
    built.decode_steps = lambda *a, **kw: calls.append(a[-1]) or decode_steps(*a, **kw)
    prompts = ["Hello, my name is", "1 2 3 4", "x", "a longer prompt that needs several prefill chunks of sixteen tokens", "The end"]
    params = [SamplingParams(max_tokens=n, ignore_eos=True) for n in (13, 9, 16, 11, 6)]
    outputs = {}
    for k in (1, 4):
        llm = LLM.from_parts(built, tokenizer, load_llm_args([], **settings, decode_steps_per_launch=k))
        outputs[k] = [o.outputs[0].token_ids for o in llm.generate(prompts, params)]
        assert llm.engine.stats["num_used_slots"] == 0
    assert outputs[4] == outputs[1]
    assert [len(t) for t in outputs[4]] == [13, 9, 16, 11, 6]
    assert calls and set(calls) == {4}  # k = 4 launches ran (k = 1 never calls decode_steps)


