"""LLM.generate over the toy model, and the LLM constructor's wiring to build_model / load_tokenizer."""
from __future__ import annotations

import sys
import types

import pytest

from runtime_fakes import VOCAB, FakeBuiltModel, FakeTokenizer, make_args, reference_generate
from trtllm_flash.llm import LLM, SamplingParams


def _llm(**overrides) -> LLM:
    return LLM.from_parts(FakeBuiltModel(), FakeTokenizer(), make_args(**overrides))


def test_generate_strings_and_token_lists():
    llm = _llm()
    tokenizer = FakeTokenizer()
    outputs = llm.generate(["abc", "hello"], SamplingParams(max_tokens=6))
    assert [o.prompt for o in outputs] == ["abc", "hello"]
    for output in outputs:
        (completion,) = output.outputs
        assert output.prompt_token_ids == tokenizer.encode(output.prompt)
        assert completion.token_ids == reference_generate(output.prompt_token_ids, 6)
        assert completion.text == tokenizer.decode(completion.token_ids)
        assert completion.finish_reason == "length" and output.error is None
    (by_ids,) = llm.generate([0, 1, 2], SamplingParams(max_tokens=6))
    assert by_ids.prompt is None and by_ids.prompt_token_ids == tokenizer.memory_token_ids + [0, 1, 2]
    assert by_ids.outputs[0].token_ids == outputs[0].outputs[0].token_ids  # "abc" is 0, 1, 2
    assert llm.engine.cache_manager.num_used_pages == 0 and llm.engine.cache_manager.num_used_slots == 0


def test_stop_string_cuts_the_text():
    llm = _llm()
    (full,) = llm.generate("abc", SamplingParams(max_tokens=12))
    text = full.outputs[0].text
    stop = text[5:7]
    (cut,) = llm.generate("abc", SamplingParams(max_tokens=12, stop=stop))
    assert cut.outputs[0].finish_reason == "stop"
    assert cut.outputs[0].text == text[: text.find(stop)]


def test_stop_token_is_kept_in_ids_but_not_in_text():
    llm = _llm()
    expected = reference_generate(FakeTokenizer().encode("ab"), 10)
    stop_id = next(t for t in expected if t < 26)
    (out,) = llm.generate("ab", SamplingParams(max_tokens=10, stop_token_ids=[stop_id]))
    completion = out.outputs[0]
    assert completion.token_ids[-1] == stop_id and completion.finish_reason == "stop"
    assert completion.text == FakeTokenizer().decode(completion.token_ids[:-1])


def test_n_completions_with_derived_seeds():
    llm = _llm()
    (out,) = llm.generate("abc", SamplingParams(max_tokens=8, temperature=1.0, seed=5, n=2))
    assert [c.index for c in out.outputs] == [0, 1]
    (first,) = llm.generate("abc", SamplingParams(max_tokens=8, temperature=1.0, seed=5))
    (second,) = llm.generate("abc", SamplingParams(max_tokens=8, temperature=1.0, seed=6))
    assert out.outputs[0].token_ids == first.outputs[0].token_ids
    assert out.outputs[1].token_ids == second.outputs[0].token_ids


def test_a_bad_prompt_fails_alone(capsys):
    llm = _llm()
    outputs = llm.generate(["abc", "a" * 70, ""], SamplingParams(max_tokens=4), use_tqdm=True)
    assert outputs[0].error is None and len(outputs[0].outputs[0].token_ids) == 4
    assert "max_seq_len" in outputs[1].error and outputs[1].outputs == []
    assert "empty" in outputs[2].error
    assert "1/1 requests finished" in capsys.readouterr().out
    with pytest.raises(ValueError, match="one per prompt"):
        llm.generate(["a", "b"], [SamplingParams()])


def test_constructor_builds_through_build_model_and_load_tokenizer(monkeypatch):
    seen = {}

    def fake_build_model(args, progress=print):
        seen["args"] = args
        return FakeBuiltModel()

    def fake_load_tokenizer(name, config):
        seen["tokenizer"] = (name, config.vocab_size)
        return FakeTokenizer()

    monkeypatch.setattr("trtllm_flash.build.build_model", fake_build_model)
    monkeypatch.setitem(sys.modules, "trtllm_flash.loading", types.SimpleNamespace(load_tokenizer=fake_load_tokenizer))
    lines = []
    llm = LLM("toy", device="cpu", compile_backend="torch-cudagraph", max_seq_len=64,
              kv_cache_config={"tokens_per_block": 4, "max_tokens": 128}, progress=lines.append)
    assert seen["args"].model == "toy" and seen["args"].device == "cpu"
    assert seen["tokenizer"] == ("toy", 64)
    assert sum("runs eagerly" in line for line in lines) == 1
    # the cache lines: one before the (possibly long) allocation, one with what each kind of cache took
    allocating = next(i for i, line in enumerate(lines) if line.startswith("[cache] allocating 8 state slots"))
    assert "state slots" in lines[allocating + 1] and "KV" in lines[allocating + 1] and "32 pages of 4 tokens" in lines[allocating + 1]
    (out,) = llm.generate("abc", SamplingParams(max_tokens=3))
    assert out.outputs[0].token_ids == reference_generate(FakeTokenizer().encode("abc"), 3)
    with pytest.raises(ValueError, match="did you mean 'max_seq_len'"):
        LLM("toy", max_seq_lenn=3)
    with pytest.raises(ValueError, match="model is required"):
        LLM(device="cpu")


@pytest.mark.parametrize("interruption", [RuntimeError("boom"), KeyboardInterrupt()])
def test_generate_frees_every_slot_and_page_whatever_happens(interruption):
    """Issue 17: an exception (or Ctrl-C) in a step left the batch's requests in the engine for good."""
    llm = _llm()
    real_step, calls = llm.engine.step, []

    def step_then_fail():
        calls.append(1)
        if len(calls) == 3:
            raise interruption
        return real_step()

    llm.engine.step = step_then_fail
    with pytest.raises(type(interruption)):
        llm.generate(["abc", "hello", "xyz"], SamplingParams(max_tokens=8))
    assert (llm.engine.cache_manager.num_used_pages, llm.engine.cache_manager.num_used_slots) == (0, 0)
    assert not llm.engine.has_unfinished_requests()
    llm.engine.step = real_step
    (again,) = llm.generate("abc", SamplingParams(max_tokens=4))
    assert again.outputs[0].token_ids == reference_generate(FakeTokenizer().encode("abc"), 4)


def test_a_request_failing_in_a_step_gets_its_own_error():
    llm = LLM.from_parts(FakeBuiltModel(poison=VOCAB - 1), FakeTokenizer(), make_args())
    good, bad = llm.generate([[1, 2, 3], [4, VOCAB - 1]], SamplingParams(max_tokens=5))
    assert good.error is None and good.outputs[0].token_ids == reference_generate(FakeTokenizer().memory_token_ids + [1, 2, 3], 5)
    assert "poisoned token" in bad.error
    assert llm.engine.cache_manager.num_used_slots == 0
