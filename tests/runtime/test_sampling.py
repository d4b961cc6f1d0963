"""Sampling: greedy, seeds, top-k / top-p masks, stop strings, and SamplingParams validation."""
from __future__ import annotations

import math

import pytest
import torch

from trtllm_flash.runtime.sampling import RowSamplingError, find_stop_string, make_generator, sample, top_k_mask, top_p_mask
from trtllm_flash.sampling_params import SamplingParams


def _logits(rows: int = 5, vocab: int = 37, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed))


def test_greedy_is_argmax():
    logits = _logits()
    params = [SamplingParams(temperature=0.0, top_k=3, seed=i) for i in range(5)]
    assert sample(logits, params, [None] * 5).tolist() == logits.argmax(-1).tolist()


def test_seeded_rows_do_not_depend_on_the_batch():
    logits = _logits(4)
    hot = SamplingParams(temperature=1.0, seed=7)
    draws_alone, draws_batch = [], []
    g_alone, g_batch = make_generator(7, "cpu"), make_generator(7, "cpu")
    others = [SamplingParams(temperature=0.8, seed=s) for s in (1, 2, 3)]
    for _ in range(20):
        draws_alone.append(int(sample(logits[2:3], [hot], [g_alone])[0]))
        batch = sample(logits, [others[0], others[1], hot, others[2]], [make_generator(1, "cpu"), make_generator(2, "cpu"), g_batch, make_generator(3, "cpu")]).tolist()
        draws_batch.append(batch[2])
    assert draws_alone == draws_batch
    assert len(set(draws_alone)) > 1  # it samples, it is not greedy


def test_top_k_mask_keeps_the_k_best():
    logits = torch.tensor([[0.1, 3.0, 2.0, -1.0, 2.5], [1.0, 2.0, 3.0, 4.0, 5.0]])
    masked = top_k_mask(logits, torch.tensor([2, 0]))
    assert torch.isfinite(masked[0]).tolist() == [False, True, False, False, True]
    assert torch.isfinite(masked[1]).all()


def test_top_p_mask_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.15, 0.5, 0.05, 0.3]] * 3)
    masked = top_p_mask(probs.log(), torch.tensor([0.7, 0.5, 1.0]))
    assert torch.isfinite(masked[0]).tolist() == [False, True, False, True]  # 0.5 + 0.3 >= 0.7
    assert torch.isfinite(masked[1]).tolist() == [False, True, False, False]  # 0.5 alone reaches 0.5
    assert torch.isfinite(masked[2]).all()


def test_sampled_tokens_stay_inside_top_k_and_top_p():
    logits = _logits(1, 50, seed=3)
    best3 = set(logits[0].topk(3).indices.tolist())
    generator = make_generator(0, "cpu")
    drawn = {int(sample(logits, [SamplingParams(temperature=2.0, top_k=3)], [generator])[0]) for _ in range(60)}
    assert drawn <= best3 and len(drawn) > 1
    single = {int(sample(logits, [SamplingParams(temperature=1.0, top_p=1e-6)], [generator])[0]) for _ in range(10)}
    assert single == {int(logits[0].argmax())}


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_draws_follow_the_softmax_at_the_temperature(temperature):
    """4000 seeded draws: each token's frequency within 0.03 of softmax(logits / temperature) (a few sigma)."""
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]]).expand(4000, 4)
    generator = make_generator(0, "cpu")
    tokens = sample(logits, [SamplingParams(temperature=temperature)] * 4000, [generator] * 4000)
    frequencies = torch.bincount(tokens, minlength=4).float() / 4000
    torch.testing.assert_close(frequencies, (logits[0] / temperature).softmax(-1), atol=0.03, rtol=0)


def test_find_stop_string():
    assert find_stop_string("hello world", ["wor", "lo"]) == 3
    assert find_stop_string("hello world", ["xyz"]) is None
    assert find_stop_string("abcabc", ["abc"], search_from=4) == 3  # only matches ending after index 4
    assert find_stop_string("abcab", ["bc"], search_from=4) is None


def test_sampling_params_defaults_and_validation():
    params = SamplingParams()
    assert (params.max_tokens, params.temperature, params.top_k, params.top_p, params.n) == (16, 0.0, 0, 1.0, 1)
    assert params.greedy and SamplingParams(stop="x").stop == ["x"]
    with pytest.raises(ValueError, match="did you mean 'temperature'"):
        SamplingParams(temprature=0.5)
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        SamplingParams(max_tokens=0)
    with pytest.raises(ValueError, match="top_p must be in"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError, match="finite"):
        SamplingParams(temperature=math.inf)
    with pytest.raises(ValueError, match="top_k must be an integer"):
        SamplingParams(top_k=1.5)
    with pytest.raises(ValueError, match="stop must be"):
        SamplingParams(stop=[""])


def test_tiny_temperature_is_greedy_and_huge_top_k_or_seed_are_refused():
    """Issue 17: a temperature of 1e-45 sampled NaN, top_k / seed >= 2**63 overflowed in the sampler."""
    logits = _logits()
    tiny = [SamplingParams(temperature=1e-45, seed=1) for _ in range(5)]
    assert all(p.greedy for p in tiny) and not SamplingParams(temperature=1e-5).greedy
    assert sample(logits, tiny, [make_generator(1, "cpu")] * 5).tolist() == logits.argmax(-1).tolist()
    assert SamplingParams(top_k=2**31 - 1, seed=2**63 - 1).top_k == 2**31 - 1
    with pytest.raises(ValueError, match="top_k must be <= 2147483647"):
        SamplingParams(top_k=2**63)
    with pytest.raises(ValueError, match="seed must be <= 9223372036854775807"):
        SamplingParams(seed=2**64)


def test_a_row_that_cannot_be_sampled_fails_alone():
    logits = _logits(3)
    params = [SamplingParams(temperature=1.0, seed=s) for s in range(3)]
    expected = sample(logits, params, [make_generator(s, "cpu") for s in range(3)]).tolist()
    for breakage in ({"temperature": float("nan")}, {"top_k": 2**63}):   # set past validation
        broken = [SamplingParams(temperature=1.0, seed=s) for s in range(3)]
        for key, value in breakage.items():
            setattr(broken[1], key, value)
        with pytest.raises(RowSamplingError) as raised:
            sample(logits, broken, [make_generator(s, "cpu") for s in range(3)])
        assert list(raised.value.errors) == [1]
        tokens = raised.value.tokens.tolist()
        assert (tokens[0], tokens[2]) == (expected[0], expected[2])
