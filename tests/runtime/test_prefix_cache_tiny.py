"""Prefix cache on the tiny preset (fp32, CPU; DeltaNet, Mamba2, sliding-window and full attention,
short convs): every request's logits with the memory-token prefix and block reuse equal those of the
same request computed from token 0 (within 1e-5, greedy tokens identical), and the prompt tokens
prefilled drop by exactly the reused length."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from trtllm_flash.build import build_model
from trtllm_flash.llm_args import load_llm_args
from trtllm_flash.runtime import engine as engine_module
from trtllm_flash.runtime.engine import Engine
from trtllm_flash.sampling_params import SamplingParams

from test_prefix_cache import assert_drained

ATOL = 1e-5
PAGE = 8  # tiny: 4 memory tokens (a mid-page prefix), sliding window 16 (a ring of 3 pages)


def _args(**overrides):
    base = {"model": "tiny", "dtype": "float32", "device": "cpu", "max_batch_size": 4, "max_seq_len": 128,
            "max_num_tokens": 64, "kv_cache_config": {"tokens_per_block": PAGE, "max_tokens": 512}}
    return load_llm_args([], base, **overrides)


@pytest.fixture(scope="module")
def built():
    return build_model(_args().for_build(), progress=None)


@pytest.fixture
def record_logits(monkeypatch):
    """request params object -> the logits rows its tokens were sampled from, in order."""
    rows = {}
    sample = engine_module.sample

    def recording(logits, params, generators):
        for row, p in zip(logits, params):
            rows.setdefault(id(p), []).append(row.detach().clone())
        return sample(logits, params, generators)

    monkeypatch.setattr(engine_module, "sample", recording)
    return rows


def _run(engine, rows, requests, arrivals, max_tokens):
    """Add ``requests`` (id -> prompt, or a callable of the finished outputs so far, for chat turns) at
    their arrival steps; return id -> (tokens, logits [n, vocab])."""
    params = {rid: SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=True) for rid in requests}
    tokens = {rid: [] for rid in requests}
    done, pending, step = set(), dict(requests), 0
    while pending or engine.has_unfinished_requests():
        for rid in [r for r in pending if arrivals.get(r, 0) <= step and all(d in done for d in arrivals.get(r + ":after", []))]:
            prompt = pending.pop(rid)
            engine.add_request(rid, prompt(tokens) if callable(prompt) else prompt, params[rid])
        for delta in engine.step():
            assert delta.error is None, delta.error
            tokens[delta.request_id].extend(delta.new_token_ids)
            if delta.finished:
                done.add(delta.request_id)
        step += 1
        assert step < 2000
    return {rid: (tokens[rid], torch.stack(rows[id(params[rid])])) for rid in requests}


def _compare(built, record_logits, requests, arrivals=None, max_tokens=4, preempts=False, **overrides):
    """Run ``requests`` without any reuse, then with the memory prefix and block reuse; compare.
    ``preempts``: the pool is too small (preempted prompts are recomputed, a different amount in each
    run, so only the outputs are compared)."""
    arrivals = arrivals or {}
    kv = {"tokens_per_block": PAGE, "max_tokens": 512, **overrides.pop("kv_cache_config", {})}
    tokenizer = SimpleNamespace(eos_token_id=None)
    plain = Engine(built, tokenizer, _args(kv_cache_config={**kv, "reuse_memory_tokens": False}, **overrides))
    reuse = Engine(built, tokenizer, _args(kv_cache_config={**kv, "enable_block_reuse": True}, **overrides))
    expected = _run(plain, record_logits, requests, arrivals, max_tokens)
    record_logits.clear()
    got = _run(reuse, record_logits, requests, arrivals, max_tokens)
    for rid in requests:
        assert got[rid][0] == expected[rid][0], rid
        diff = (got[rid][1] - expected[rid][1]).abs().max().item()
        assert diff <= ATOL, f"{rid}: logits differ by {diff:.3g}"
    reused = reuse.stats["num_reused_tokens"]
    assert plain.stats["num_reused_tokens"] == 0
    if not preempts:
        assert plain.stats["num_prefilled_tokens"] - reuse.stats["num_prefilled_tokens"] == reused
        assert plain.stats["num_prefilled_tokens"] == sum(len(p) for p in plain_prompts(requests, expected))
    assert_drained(plain)
    assert_drained(reuse)
    return reuse, reused


def plain_prompts(requests, results):
    outputs = {rid: tokens for rid, (tokens, _) in results.items()}
    return [p(outputs) if callable(p) else p for p in requests.values()]


def _text(rng, n):
    return [rng.randrange(3, 1000) for _ in range(n)]


MEMORY = list(range(1024, 1028))


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_single_prompts_and_a_shared_system_prompt(built, record_logits, chunked):
    rng = random.Random(0)
    system = _text(rng, 27)  # memory + system = 31 tokens: the shared part ends mid-page, past the window
    requests = {"single": MEMORY + _text(rng, 5)}
    requests.update({f"sys{i}": MEMORY + system + _text(rng, 3 + 4 * i) for i in range(4)})
    arrivals = {rid: 6 * i for i, rid in enumerate(requests)}  # one at a time
    overrides = {"enable_chunked_prefill": True, "max_num_tokens": 12} if chunked else {}
    engine, reused = _compare(built, record_logits, requests, arrivals, **overrides)
    # every request skips the memory tokens; the third and fourth also the system prompt's first 3 pages
    assert reused >= 4 * len(requests) + 2 * (24 - 4)


def test_multi_turn_chat_and_short_prefixes_inside_the_window(built, record_logits):
    rng = random.Random(1)
    first = MEMORY + _text(rng, 6)  # 10 tokens: inside the window, mid-page
    extra = [_text(rng, 3), _text(rng, 9)]
    requests = {
        "t0": first,
        "t1": lambda out: first + out["t0"] + extra[0],
        "t2": lambda out: first + out["t0"] + extra[0] + out["t1"] + extra[1],
    }
    arrivals = {"t1:after": ["t0"], "t2:after": ["t1"]}
    engine, reused = _compare(built, record_logits, requests, arrivals, max_tokens=5)
    # each later turn resumes after the previous turn's prompt and output (minus its last token)
    assert reused == 4 + (len(first) + 5 - 1) + (len(first) + 5 + 3 + 5 - 1)


def test_mixed_batches_and_preemption_under_a_small_pool(built, record_logits):
    rng = random.Random(2)
    system = _text(rng, 12)
    requests = {f"r{i}": MEMORY + system + _text(rng, rng.randint(2, 14)) for i in range(6)}
    arrivals = {rid: 3 * i for i, rid in enumerate(requests)}
    engine, reused = _compare(built, record_logits, requests, arrivals, max_tokens=6, preempts=True, max_batch_size=3,
                              enable_chunked_prefill=True, max_num_tokens=16, kv_cache_config={"max_tokens": 64})
    assert engine.scheduler.num_preemptions > 0
    assert reused > 4 * len(requests)


def test_snapshot_memory_figures_use_the_built_models_cache_specs(built):
    """bench.prefix_cache computes the 1B / 3B snapshot sizes from their configs: its specs must be the
    ones a built model declares."""
    from collections import Counter

    from bench.prefix_cache import config_cache_specs

    assert Counter(config_cache_specs(built.config, torch.float32).values()) == Counter(built.cache_specs.values())
