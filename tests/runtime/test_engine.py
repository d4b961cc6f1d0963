"""Engine + scheduler on the toy model: every schedule must give exactly the tokens of each request run
alone (computed from the history with no cache at all)."""
from __future__ import annotations

import random

import pytest

from runtime_fakes import FakeTokenizer, make_engine, reference_generate, run_all
from trtllm_flash.sampling_params import SamplingParams


@pytest.fixture(params=[(False, 1), (True, 1), (False, 4), (True, 4)], ids=["overlap", "no_overlap", "overlap-k4", "no_overlap-k4"])
def make(request):
    """Every test runs with the overlap scheduler (tokens read one step late) and without it, one decode
    step per launch and four (decode-only greedy batches run 4 steps per launch)."""
    no_overlap, k = request.param
    return lambda **overrides: make_engine(disable_overlap_scheduler=no_overlap, decode_steps_per_launch=k, **overrides)


def _prompts(count: int, seed: int = 0, lengths=(3, 30)):
    rng = random.Random(seed)
    return {f"r{i}": [rng.randrange(64) for _ in range(rng.randint(*lengths))] for i in range(count)}


def _greedy(max_tokens: int, **kw) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, **kw)


def _assert_alone(results, prompts, params):
    for rid, prompt in prompts.items():
        assert results[rid]["error"] is None, results[rid]
        assert results[rid]["tokens"] == reference_generate(prompt, params[rid].max_tokens), rid


def _assert_empty(engine):
    assert engine.cache_manager.num_used_pages == 0
    assert engine.cache_manager.num_used_slots == 0
    assert not engine.has_unfinished_requests()


def test_single_request_matches_reference(make):
    engine = make()
    prompts = {"a": [5, 9, 1, 33, 2, 7]}
    params = {"a": _greedy(12)}
    results = run_all(engine, prompts, params)
    _assert_alone(results, prompts, params)
    assert results["a"]["finish_reason"] == "length"
    assert len(engine.model.batches) == 12  # prefill + 11 decodes: no forward beyond max_tokens, overlap or not
    _assert_empty(engine)


def test_chunked_prefill_equals_unchunked_and_respects_the_budget(make):
    prompts = _prompts(3, seed=1, lengths=(17, 29))
    params = {rid: _greedy(6) for rid in prompts}
    whole = make(max_num_tokens=64)
    chunked = make(max_num_tokens=7, enable_chunked_prefill=True)
    results_whole = run_all(whole, prompts, params)
    results_chunked = run_all(chunked, prompts, params)
    assert results_chunked == results_whole
    _assert_alone(results_chunked, prompts, params)
    assert all(b["num_tokens"] <= 7 for b in chunked.model.batches)
    assert len(chunked.model.batches) > len(whole.model.batches)
    _assert_empty(chunked)


def test_non_final_prefill_chunks_sample_nothing(make):
    engine = make(max_num_tokens=4, enable_chunked_prefill=True)
    engine.add_request("a", list(range(10)), _greedy(3))
    per_step = [engine.step() for _ in range(4)]
    assert per_step[0] == [] and per_step[1] == []  # chunks of 4, 4 tokens: no logits wanted
    # the last 2 tokens sample the first token; the overlap scheduler reports it one step later
    first = per_step[3] if engine.overlap else per_step[2]
    assert engine.overlap == (per_step[2] == [])
    assert first[0].new_token_ids == reference_generate(list(range(10)), 1)


def test_requests_arriving_at_different_steps_match_each_alone(make):
    prompts = _prompts(7, seed=2)
    params = {rid: _greedy(4 + i) for i, rid in enumerate(prompts)}
    arrivals = {rid: 2 * i for i, rid in enumerate(prompts)}
    engine = make(max_num_tokens=16, enable_chunked_prefill=True)
    results = run_all(engine, prompts, params, arrivals)
    _assert_alone(results, prompts, params)
    assert any(b["num_prefill"] > 0 and b["num_decode"] > 0 for b in engine.model.batches), "no mixed prefill/decode step"
    assert max(b["num_prefill"] + b["num_decode"] for b in engine.model.batches) <= 4  # max_batch_size
    _assert_empty(engine)


def test_without_chunking_a_prompt_waits_until_it_fits_whole(make):
    prompts = {"long": list(range(20)), "short": [1, 2, 3]}
    params = {"long": _greedy(5), "short": _greedy(5)}
    engine = make(max_num_tokens=20)
    results = run_all(engine, prompts, params, arrivals={"long": 1})
    _assert_alone(results, prompts, params)
    assert all(b["num_tokens"] <= 20 for b in engine.model.batches)


def test_cache_exhaustion_preempts_recomputes_and_loses_nothing(make):
    prompts = _prompts(6, seed=3, lengths=(8, 14))
    params = {rid: _greedy(10) for rid in prompts}
    # 12 usable pages of 4 tokens; each request needs up to 6 pages, 6 requests never fit at once
    engine = make(max_batch_size=4, kv_cache_config={"tokens_per_block": 4, "max_tokens": 48},
                         max_num_tokens=16, enable_chunked_prefill=True)
    results = run_all(engine, prompts, params)
    assert engine.scheduler.num_preemptions > 0
    _assert_alone(results, prompts, params)
    _assert_empty(engine)


def test_preemption_without_chunked_prefill_still_finishes(make):
    prompts = _prompts(5, seed=4, lengths=(6, 10))
    params = {rid: _greedy(12) for rid in prompts}
    engine = make(max_batch_size=3, kv_cache_config={"tokens_per_block": 4, "max_tokens": 24}, max_num_tokens=12)
    results = run_all(engine, prompts, params)
    assert engine.scheduler.num_preemptions > 0
    _assert_alone(results, prompts, params)
    _assert_empty(engine)


def test_slots_are_reused_without_leaking_state(make):
    prompts = _prompts(4, seed=5)
    params = {rid: _greedy(5) for rid in prompts}
    engine = make(max_batch_size=1)
    results = run_all(engine, prompts, params)
    _assert_alone(results, prompts, params)
    assert max(b["num_prefill"] + b["num_decode"] for b in engine.model.batches) == 1


def test_abort_frees_cache_at_once_and_others_finish(make):
    prompts = _prompts(4, seed=6, lengths=(10, 12))
    params = {rid: _greedy(8) for rid in prompts}
    engine = make(max_batch_size=2)
    for rid, prompt in prompts.items():
        engine.add_request(rid, prompt, params[rid])
    tokens = {rid: [] for rid in prompts}
    reasons = {}

    def collect(deltas):
        for delta in deltas:
            tokens[delta.request_id].extend(delta.new_token_ids)
            if delta.finished:
                reasons[delta.request_id] = delta.finish_reason

    collect(engine.step())
    collect(engine.step())
    victim = engine.scheduler.running[0].request_id
    assert len(engine.scheduler.running) == 2 and engine.stats["num_waiting"] == 2
    pages_before = engine.cache_manager.num_used_pages
    victim_pages = len(engine.cache_manager.page_table_row(victim))
    assert victim_pages > 0
    engine.abort_request(victim)
    engine.abort_request("r3")  # waiting
    engine.abort_request("nonexistent")
    assert engine.cache_manager.num_used_pages == pages_before - victim_pages
    assert engine.cache_manager.num_used_slots == 1
    while engine.has_unfinished_requests():
        collect(engine.step())
    assert reasons[victim] == "abort" and reasons["r3"] == "abort"
    for rid in set(prompts) - {victim, "r3"}:
        assert reasons[rid] == "length"
        assert tokens[rid] == reference_generate(prompts[rid], params[rid].max_tokens)
    _assert_empty(engine)


def test_stop_token_eos_and_ignore_eos(make):
    prompt = [3, 1, 4, 1, 5]
    expected = reference_generate(prompt, 8)
    stop_at = expected[3]
    engine = make(tokenizer=FakeTokenizer(eos_token_id=stop_at))
    results = run_all(engine, {"eos": prompt, "ignore": prompt, "stop_id": prompt},
                      {"eos": _greedy(8), "ignore": _greedy(8, ignore_eos=True), "stop_id": _greedy(8, stop_token_ids=[stop_at])})
    first = expected.index(stop_at) + 1
    assert results["eos"]["tokens"] == expected[:first] and results["eos"]["finish_reason"] == "stop"
    assert results["stop_id"]["tokens"] == expected[:first] and results["stop_id"]["finish_reason"] == "stop"
    assert results["ignore"]["tokens"] == expected and results["ignore"]["finish_reason"] == "length"


def test_stop_string_ends_generation(make):
    prompt = [7, 7, 2]
    expected = reference_generate(prompt, 10)
    text = FakeTokenizer().decode(expected)
    stop = text[4:6]
    engine = make()
    results = run_all(engine, {"a": prompt}, {"a": _greedy(10, stop=[stop])})
    cut = text.find(stop) + len(stop)
    assert results["a"]["finish_reason"] == "stop"
    assert results["a"]["tokens"] == expected[:cut]


def test_seeded_sampling_does_not_depend_on_the_batch(make):
    prompt = [1, 2, 3, 4]
    params = SamplingParams(max_tokens=12, temperature=1.5, seed=1234)
    alone = run_all(make(), {"s": prompt}, {"s": params})["s"]["tokens"]
    others = _prompts(3, seed=7)
    crowd = run_all(make(), {"s": prompt, **others},
                    {"s": params, **{rid: SamplingParams(max_tokens=9, temperature=1.0, seed=i) for i, rid in enumerate(others)}},
                    arrivals={"s": 1})["s"]["tokens"]
    assert crowd == alone
    assert alone != reference_generate(prompt, 12)  # it really sampled


@pytest.mark.parametrize("prompt, params, message", [
    ([], SamplingParams(), "empty"),
    (list(range(64)), SamplingParams(max_tokens=1), "max_seq_len"),
    (list(range(60)), SamplingParams(max_tokens=10), "max_tokens"),
    ([1, 2, 200], SamplingParams(), "token id 200"),
    ([1, 2], SamplingParams(n=2), "n=2"),
])
def test_invalid_requests_are_refused_alone(make, prompt, params, message):
    engine = make()
    engine.add_request("ok", [1, 2, 3], _greedy(2))
    with pytest.raises(ValueError, match=message):
        engine.add_request("bad", prompt, params)
    results = {"ok": []}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            results[delta.request_id].extend(delta.new_token_ids)
    assert results["ok"] == reference_generate([1, 2, 3], 2)


def test_duplicate_id_and_unchunkable_prompt_are_refused(make):
    engine = make(max_num_tokens=8)
    engine.add_request("a", [1, 2], _greedy(2))
    with pytest.raises(ValueError, match="already in use"):
        engine.add_request("a", [1, 2], _greedy(2))
    with pytest.raises(ValueError, match="enable_chunked_prefill"):
        engine.add_request("b", list(range(9)), _greedy(2))
    assert engine.stats["num_waiting"] == 1


def test_prompt_the_kv_cache_can_never_hold_is_refused(make):
    engine = make(kv_cache_config={"tokens_per_block": 4, "max_tokens": 16})
    with pytest.raises(ValueError, match="KV pages"):
        engine.add_request("a", list(range(14)), _greedy(4))


def test_max_request_tokens_is_what_the_kv_pool_holds(make):
    small = make(kv_cache_config={"tokens_per_block": 4, "max_tokens": 16})
    assert small.max_request_tokens == (small.cache_manager.num_pages - 1) * 4 < small.args.max_seq_len
    small.add_request("fits", [1, 2], _greedy(small.max_request_tokens - 2))
    with pytest.raises(ValueError, match="KV pages"):
        small.add_request("one_more", [1, 2], _greedy(small.max_request_tokens - 1))
    assert make().max_request_tokens == 64   # the pool holds more than max_seq_len
