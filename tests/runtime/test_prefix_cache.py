"""Prefix cache on the toy model (whose next token depends on every cache kind: state slot, pages,
sliding-window ring): with reuse, every request still gets exactly the tokens it gets alone; the
prefilled-token count drops by exactly the reused length; nothing leaks."""
from __future__ import annotations

import random

import pytest

from runtime_fakes import NUM_MEMORY_TOKENS, FakeTokenizer, make_engine, reference_generate, run_all
from trtllm_flash.sampling_params import SamplingParams

MEMORY = FakeTokenizer.memory_token_ids
PAGE = 4


def _engine(reuse: bool = True, memory: bool = True, **overrides):
    kv = {"tokens_per_block": PAGE, "max_tokens": 256, "enable_block_reuse": reuse, "reuse_memory_tokens": memory}
    kv.update(overrides.pop("kv_cache_config", {}))
    return make_engine(kv_cache_config=kv, **overrides)


def _greedy(max_tokens: int) -> SamplingParams:
    return SamplingParams(max_tokens=max_tokens, temperature=0.0)


def _text(rng: random.Random, n: int):
    return [rng.randrange(26) for _ in range(n)]


def _assert_alone(results, prompts, max_tokens):
    for rid, prompt in prompts.items():
        assert results[rid]["error"] is None, results[rid]
        assert results[rid]["tokens"] == reference_generate(prompt, max_tokens), rid


def assert_drained(engine):
    """No page or slot in use; every page is free or cached; dropping the cache frees all but the
    pinned memory-token pages."""
    cache = engine.cache_manager
    assert not engine.has_unfinished_requests()
    assert cache.num_used_pages == 0 and cache.num_used_slots == 0
    assert cache.num_free_pages + cache.num_cached_pages == cache.num_pages - 1
    engine.prefix_cache.clear()
    assert cache.num_free_pages == cache.num_pages - 1 - cache.reserved_pages
    assert engine.prefix_cache.num_snapshots == (1 if engine.memory_token_ids else 0)


def test_memory_prefix_is_computed_once_at_construction_and_never_prefilled_again():
    engine = _engine(reuse=False, kv_cache_config={"tokens_per_block": 8})  # 2 memory tokens: a mid-page prefix
    assert engine.prefix_cache.num_snapshots == 1 and engine.cache_manager.reserved_pages == 0
    rng = random.Random(0)
    prompts = {f"r{i}": MEMORY + _text(rng, 3 + 2 * i) for i in range(4)}
    results = run_all(engine, prompts, {rid: _greedy(5) for rid in prompts})
    _assert_alone(results, prompts, 5)
    assert engine.stats["num_prefilled_tokens"] == sum(len(p) - NUM_MEMORY_TOKENS for p in prompts.values())
    assert engine.stats["num_reused_tokens"] == NUM_MEMORY_TOKENS * len(prompts)
    assert engine.model.batches[0]["num_tokens"] == sum(len(p) - NUM_MEMORY_TOKENS for p in prompts.values())  # memory tokens skipped
    assert engine.prefix_cache.num_blocks == 0  # reuse off: nothing but the memory prefix is cached
    assert_drained(engine)


def test_memory_prefix_of_whole_pages_is_shared_and_reserved():
    engine = _engine(reuse=False, kv_cache_config={"tokens_per_block": 2})  # 2 memory tokens = one page
    assert engine.cache_manager.reserved_pages == 1 and engine.cache_manager.num_cached_pages == 1
    shared = engine.prefix_cache.match(MEMORY + [3, 4]).pages
    engine.add_request("a", MEMORY + [3, 4, 5], _greedy(3))
    engine.add_request("b", MEMORY + [6], _greedy(3))
    engine.step()
    rows = [engine.cache_manager.page_table_row(r) for r in ("a", "b")]
    assert rows[0][0] == rows[1][0] == shared[0]  # both read the one memory page
    assert engine.cache_manager.num_used_pages == 1 + 2 + 1  # the shared page, a's own 2 pages, b's own page
    while engine.has_unfinished_requests():
        engine.step()
    assert_drained(engine)


def test_prompts_without_the_memory_prefix_and_switching_it_off():
    rng = random.Random(1)
    prompts = {"plain": _text(rng, 9), "memory": MEMORY + _text(rng, 9), "only_memory": list(MEMORY)}
    for memory in (True, False):
        engine = _engine(reuse=False, memory=memory)
        results = run_all(engine, prompts, {rid: _greedy(4) for rid in prompts})
        _assert_alone(results, prompts, 4)
        reused = NUM_MEMORY_TOKENS if memory else 0  # a prompt of only memory tokens must compute its last one
        assert engine.stats["num_reused_tokens"] == reused
        assert engine.stats["num_prefilled_tokens"] == sum(map(len, prompts.values())) - reused
        assert_drained(engine)


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "chunked"])
def test_shared_system_prompt_reuses_pages_and_snapshots(chunked):
    rng = random.Random(2)
    system = _text(rng, 11)  # memory + system = 13 tokens: ends mid-page
    prompts = {f"r{i}": MEMORY + system + _text(rng, 2 + i) for i in range(5)}
    arrivals = {rid: 12 * i for i, rid in enumerate(prompts)}  # one after another
    kw = {"max_num_tokens": 6, "enable_chunked_prefill": True} if chunked else {}
    runs = {}
    for reuse in (False, True):
        engine = _engine(reuse=reuse, **kw)
        runs[reuse] = (engine, run_all(engine, prompts, {rid: _greedy(4) for rid in prompts}, arrivals))
        _assert_alone(runs[reuse][1], prompts, 4)
    off, on = runs[False][0].stats, runs[True][0].stats
    assert off["num_prefilled_tokens"] - on["num_prefilled_tokens"] == on["num_reused_tokens"] - off["num_reused_tokens"] > 0
    engine = runs[True][0]
    # the second request ends its first chunk at the shared page boundary (12); from the third on it is reused
    assert engine.prefix_cache.match(prompts["r4"]).position >= 12
    assert_drained(engine)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlap", "no_overlap"])
def test_multi_turn_chat_resumes_where_the_last_turn_ended(overlap):
    rng = random.Random(3)
    engine = _engine(disable_overlap_scheduler=not overlap)
    history = MEMORY + _text(rng, 5)
    resume = NUM_MEMORY_TOKENS
    for turn in range(4):
        before = engine.stats["num_reused_tokens"]
        results = run_all(engine, {f"t{turn}": history}, {f"t{turn}": _greedy(3 + turn)})
        out = results[f"t{turn}"]["tokens"]
        assert out == reference_generate(history, 3 + turn)
        assert engine.stats["num_reused_tokens"] - before == resume
        # the next turn resumes after this one's prompt and output (its last token is never computed:
        # max_tokens stops the sequence before a forward feeds it)
        resume = len(history) + len(out) - 1
        history = history + out + _text(rng, 3)
        assert engine.prefix_cache.match(history).position == resume
    assert_drained(engine)


def test_preemption_under_a_small_pool_with_reuse():
    rng = random.Random(4)
    system = _text(rng, 9)
    prompts = {f"r{i}": MEMORY + system + _text(rng, rng.randint(1, 6)) for i in range(7)}
    arrivals = {rid: 2 * i for i, rid in enumerate(prompts)}
    engine = _engine(max_batch_size=4, max_num_tokens=8, enable_chunked_prefill=True,
                     kv_cache_config={"max_tokens": 48})
    results = run_all(engine, prompts, {rid: _greedy(9) for rid in prompts}, arrivals)
    assert engine.scheduler.num_preemptions > 0
    _assert_alone(results, prompts, 9)
    assert_drained(engine)


def test_snapshots_are_bounded_and_least_recently_used_go_first():
    rng = random.Random(5)
    engine = _engine(kv_cache_config={"max_snapshots": 2})
    histories = []
    for i in range(3):
        prompt = MEMORY + _text(rng, 6)  # 8 tokens: a snapshot at the chunk end (page 2) and at the finish
        out = run_all(engine, {f"c{i}": prompt}, {f"c{i}": _greedy(2)})[f"c{i}"]["tokens"]
        histories.append(prompt + out + [1, 2])
        assert engine.prefix_cache.num_snapshots <= 1 + 2  # the pinned memory prefix + 2
    # the newest two snapshots are the third conversation's; the others fell back to the memory prefix
    assert [engine.prefix_cache.match(h).position for h in histories] == [NUM_MEMORY_TOKENS, NUM_MEMORY_TOKENS, 9]
    assert_drained(engine)


def test_cached_pages_are_reclaimed_when_the_pool_runs_short():
    rng = random.Random(6)
    engine = _engine(max_batch_size=2, kv_cache_config={"max_tokens": 40})  # 10 pages
    prompts = {f"r{i}": MEMORY + _text(rng, 14) for i in range(6)}  # 4 pages each, all different
    results = run_all(engine, prompts, {rid: _greedy(4) for rid in prompts}, {rid: 5 * i for i, rid in enumerate(prompts)})
    _assert_alone(results, prompts, 4)
    assert engine.cache_manager.num_cached_pages > 0  # the cache filled the spare pages and gave them back on demand
    assert engine.scheduler.num_preemptions == 0
    assert_drained(engine)


def test_soak_with_random_shared_prefixes_and_cancellations_leaks_nothing():
    rng = random.Random(7)
    engine = _engine(max_batch_size=3, max_num_tokens=10, enable_chunked_prefill=True,
                     kv_cache_config={"max_tokens": 64, "max_snapshots": 4})
    stems = [MEMORY + _text(rng, rng.randint(0, 12)) for _ in range(4)]
    expected, got, finished, live = {}, {}, set(), []
    for step in range(400):
        if step < 300 and rng.random() < 0.3:
            rid = f"q{step}"
            prompt = rng.choice(stems) + _text(rng, rng.randint(1, 8))
            if rng.random() < 0.3:  # a follow-up turn of an earlier conversation
                done = [r for r in sorted(finished) if r in expected and len(expected[r][0]) + len(got[r]) + 6 < 60]
                if done:
                    r = rng.choice(done)
                    prompt = expected[r][0] + got[r] + _text(rng, 2)
            max_tokens = rng.randint(1, 6)
            engine.add_request(rid, prompt, _greedy(max_tokens))
            expected[rid], got[rid] = (prompt, max_tokens), []
            live.append(rid)
        if live and rng.random() < 0.05:
            victim = live.pop(rng.randrange(len(live)))
            engine.abort_request(victim)
            expected.pop(victim)
        for delta in engine.step():
            if delta.request_id in got:
                got[delta.request_id].extend(delta.new_token_ids)
            if delta.finished and delta.request_id in live:
                live.remove(delta.request_id)
                finished.add(delta.request_id)
    while engine.has_unfinished_requests():
        engine.step()
    assert len(finished) > 30 and engine.stats["num_reused_tokens"] > 0 and engine.scheduler.num_preemptions > 0
    for rid in finished:
        if rid in expected:
            prompt, max_tokens = expected[rid]
            assert got[rid] == reference_generate(prompt, max_tokens), rid
    assert_drained(engine)


def test_llm_api_reports_cached_tokens():
    from runtime_fakes import FakeBuiltModel, make_args
    from trtllm_flash.llm import LLM

    llm = LLM.from_parts(FakeBuiltModel(), FakeTokenizer(),
                         make_args(kv_cache_config={"tokens_per_block": PAGE, "max_tokens": 256, "enable_block_reuse": True}))
    (first,) = llm.generate("abcdefghij", _greedy(3))
    assert first.num_cached_tokens == NUM_MEMORY_TOKENS
    follow_up = first.prompt_token_ids[NUM_MEMORY_TOKENS:] + first.outputs[0].token_ids + [1, 2]
    (second,) = llm.generate(follow_up, _greedy(3))
    assert second.num_cached_tokens == len(first.prompt_token_ids) + 3 - 1  # the first turn's state
    assert second.outputs[0].token_ids == reference_generate(second.prompt_token_ids, 3)
