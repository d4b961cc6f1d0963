"""One bad request never hurts the others in the engine: a request whose sampling or forward fails
is evicted with its own error, and every other request finishes with exactly the tokens it gets in
a run without the offender (the toy model's tokens depend on the whole cached history)."""
from __future__ import annotations

import random

import pytest

from runtime_fakes import VOCAB, make_engine, reference_generate, run_all
from trtllm_flash.sampling_params import SamplingParams

POISON = VOCAB - 1   # a token id the fake model refuses (never in the innocent prompts below)


@pytest.fixture(params=[False, True], ids=["overlap", "no_overlap"])
def make(request):
    return lambda **overrides: make_engine(disable_overlap_scheduler=request.param, **overrides)


def _innocents(count: int = 6, seed: int = 11):
    rng = random.Random(seed)
    prompts = {f"r{i}": [rng.randrange(POISON) for _ in range(rng.randint(4, 12))] for i in range(count)}
    return prompts, {rid: SamplingParams(max_tokens=10, temperature=0.0) for rid in prompts}


def _assert_clean(engine):
    assert (engine.cache_manager.num_used_pages, engine.cache_manager.num_used_slots) == (0, 0)
    assert not engine.has_unfinished_requests()


def _assert_innocents_unharmed(results, prompts, params):
    for rid, prompt in prompts.items():
        assert results[rid]["error"] is None, (rid, results[rid])
        assert results[rid]["tokens"] == reference_generate(prompt, params[rid].max_tokens), rid


def test_a_request_whose_sampling_breaks_mid_run_fails_alone(make):
    prompts, params = _innocents()
    seeded = SamplingParams(max_tokens=10, temperature=0.8, seed=3)
    alone = run_all(make(), {"seeded": [1, 2, 3]}, {"seeded": seeded})["seeded"]["tokens"]
    offender = SamplingParams(max_tokens=30, temperature=1.0, seed=1)

    def break_offender(step: int) -> None:
        if step == 4:   # past validation: only the sampler can notice
            offender.temperature = float("nan")

    engine = make(max_batch_size=8)
    requests = {**prompts, "seeded": [1, 2, 3], "bad": [5, 6, 7]}
    results = run_all(engine, requests, {**params, "seeded": SamplingParams(max_tokens=10, temperature=0.8, seed=3),
                                         "bad": offender}, before_step=break_offender)
    assert "probability tensor contains" in results["bad"]["error"]
    assert results["bad"]["finish_reason"] is None and 0 < len(results["bad"]["tokens"]) < 30
    _assert_innocents_unharmed(results, prompts, params)
    assert results["seeded"]["tokens"] == alone   # the seeded row drew what it draws alone
    _assert_clean(engine)


def test_a_forward_failing_among_running_requests_is_pinned_on_its_request(make):
    prompts, params = _innocents()
    engine = make(max_batch_size=8, poison=POISON)
    requests = {**prompts, "bad": [1, POISON, 2]}
    # the offender arrives while the six others decode: its failing batch holds all seven
    results = run_all(engine, requests, {**params, "bad": SamplingParams(max_tokens=10)}, arrivals={"bad": 3})
    assert "poisoned token" in results["bad"]["error"] and results["bad"]["tokens"] == []
    _assert_innocents_unharmed(results, prompts, params)
    assert engine.num_failed_steps >= 2   # the shared batch, then the offender alone
    _assert_clean(engine)


def test_a_forward_failing_alone_fails_only_that_request(make):
    engine = make(poison=POISON)
    results = run_all(engine, {"bad": [POISON], "ok": [1, 2]}, {"bad": SamplingParams(max_tokens=3),
                                                               "ok": SamplingParams(max_tokens=3)},
                      arrivals={"ok": 2})
    assert "poisoned token" in results["bad"]["error"]
    assert results["ok"]["tokens"] == reference_generate([1, 2], 3)
    _assert_clean(engine)


def test_requests_set_aside_can_be_aborted(make):
    prompts, params = _innocents(4)
    engine = make(max_batch_size=8, poison=POISON)
    for rid, prompt in prompts.items():
        engine.add_request(rid, prompt, params[rid])
    engine.add_request("bad", [POISON], SamplingParams(max_tokens=4))
    engine.step()   # fails: all five are set aside
    for rid in prompts:
        engine.abort_request(rid)
    reasons = {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            reasons[delta.request_id] = delta.finish_reason or delta.error
    assert {rid: reasons[rid] for rid in prompts} == {rid: "abort" for rid in prompts}
    assert "poisoned token" in reasons["bad"]
    _assert_clean(engine)


def test_a_failure_needing_two_requests_together_ends_instead_of_retrying_for_ever(make):
    """Each alone runs fine, together the forward fails: after a bounded number of retries both fail."""
    engine = make(max_batch_size=4)
    real_forward = engine.model.forward

    def fails_with_two_rows(input_ids, position_ids, metadata, caches, gather_idx=None):
        if metadata.num_prefill + metadata.num_decode >= 2:
            raise RuntimeError("two rows")
        return real_forward(input_ids, position_ids, metadata, caches, gather_idx)

    engine.model.forward = fails_with_two_rows
    results = run_all(engine, {"a": [1, 2], "b": [3, 4]}, {"a": SamplingParams(max_tokens=50),
                                                            "b": SamplingParams(max_tokens=50)}, max_steps=2_000)
    assert all("two rows" in results[rid]["error"] for rid in "ab")
    _assert_clean(engine)
