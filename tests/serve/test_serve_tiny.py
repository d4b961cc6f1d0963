"""End to end on the ``tiny`` preset: ``trtllm-flash serve`` in a subprocess, the real ``openai``
client, greedy answers identical to ``LLM.generate``, the 400 cases, and a client that leaves
mid-stream freeing its cache."""
from __future__ import annotations

import time

import httpx
import openai
import pytest

from serve_subprocess import ServeProcess
from trtllm_flash.llm import LLM
from trtllm_flash.sampling_params import SamplingParams

MODEL = "tiny"
LIMITS = {"max_seq_len": 256, "max_batch_size": 8}
PROMPTS = ["Hello, my name is", "The capital of France is", "1 2 3 4"]
MAX_TOKENS = 12


@pytest.fixture(scope="module")
def server():
    flags = [item for name, value in LIMITS.items() for item in (f"--{name}", str(value))]
    with ServeProcess(MODEL, flags) as running:
        yield running


@pytest.fixture(scope="module")
def llm():
    return LLM(MODEL, progress=None, **LIMITS)


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)


def _greedy(llm, prompts, max_tokens=MAX_TOKENS, ignore_eos=False):
    outputs = llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=0.0, ignore_eos=ignore_eos))
    return [(o.outputs[0].text, o.outputs[0].token_ids) for o in outputs]


def _stats(server) -> dict:
    return httpx.get(server.base_url + "/stats", timeout=30).json()


def test_greedy_completions_match_llm_generate(client, llm):
    expected = _greedy(llm, PROMPTS)
    for prompt, (text, token_ids) in zip(PROMPTS, expected):
        result = client.completions.create(model=MODEL, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0)
        assert result.choices[0].text == text
        assert result.usage.completion_tokens == len(token_ids)
        prompt_ids = llm.tokenizer.encode(prompt)
        assert result.usage.prompt_tokens == len(prompt_ids) - len(llm.tokenizer.memory_token_ids)


def test_greedy_streamed_completion_matches_llm_generate(client, llm):
    (text, _), = _greedy(llm, PROMPTS[:1])
    chunks = list(client.completions.create(model=MODEL, prompt=PROMPTS[0], max_tokens=MAX_TOKENS,
                                            temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_greedy_chat_matches_llm_generate_on_the_chat_template(client, llm):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a colour."}]
    prompt_ids = list(llm.tokenizer.apply_chat_template(messages, add_generation_prompt=True))
    memory = len(llm.tokenizer.memory_token_ids)
    assert prompt_ids[:memory] == llm.tokenizer.memory_token_ids
    (text, _), = _greedy(llm, [prompt_ids[memory:]])   # generate() prepends the memory tokens itself
    whole = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=MAX_TOKENS, temperature=0)
    assert whole.choices[0].message.content == text
    assert whole.usage.prompt_tokens == len(prompt_ids) - memory
    streamed = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=MAX_TOKENS,
                                              temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text


def test_seeded_sampling_is_reproducible_and_seeds_differ(client):
    def sample(seed, **fields):
        return client.completions.create(model=MODEL, prompt=PROMPTS[1], max_tokens=MAX_TOKENS, seed=seed,
                                         **{"temperature": 1.0, "top_p": 0.9, **fields}).choices[0].text
    first = sample(1234)
    assert sample(1234) == first
    # the tiny random model's next-token distribution is broad: 12 tokens drawn with other seeds differ
    others = {sample(seed) for seed in (1, 2, 3)}
    assert first not in others and len(others) == 3


def test_top_k_1_and_tiny_top_p_sample_the_greedy_answer(client):
    greedy = client.completions.create(model=MODEL, prompt=PROMPTS[0], max_tokens=MAX_TOKENS, temperature=0).choices[0].text
    for fields in ({"extra_body": {"top_k": 1}}, {"top_p": 1e-6}):
        result = client.completions.create(model=MODEL, prompt=PROMPTS[0], max_tokens=MAX_TOKENS, temperature=1.0, seed=5,
                                           **fields)
        assert result.choices[0].text == greedy, fields


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


@pytest.mark.parametrize("kwargs, param", [
    ({"model": "nemotron-flash-9b"}, "model"),
    ({"prompt": "word " * 300}, "prompt"),
    ({"temperature": 5.0}, "temperature"),
    ({"top_p": 1.5}, "top_p"),
    ({"n": 2}, "n"),
])
def test_invalid_requests_raise_bad_request(client, kwargs, param):
    request = {"model": MODEL, "prompt": "hi", "max_tokens": 4, **kwargs}
    with pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(**request)
    assert raised.value.status_code == 400 and raised.value.body["param"] == param


def test_malformed_json_is_400(server):
    response = httpx.post(server.base_url + "/v1/chat/completions", content=b"{not json",
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_client_leaving_mid_stream_frees_its_cache(client, server):
    aborted_before = _stats(server)["requests_aborted"]
    stream = client.completions.create(model=MODEL, prompt=PROMPTS[0], max_tokens=200, temperature=0, stream=True,
                                       extra_body={"ignore_eos": True})
    next(iter(stream))
    running = _stats(server)
    stream.close()
    assert running["num_used_slots"] == 1 and running["num_used_pages"] > 0
    deadline = time.monotonic() + 30
    while _stats(server)["requests_in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = _stats(server)
    assert after["requests_aborted"] == aborted_before + 1
    assert (after["num_used_slots"], after["num_used_pages"], after["requests_in_flight"]) == (0, 0, 0)
    assert httpx.get(server.base_url + "/health", timeout=30).status_code == 200


def test_one_hostile_request_among_six_running_hurts_none(client, server, llm):
    """Issue 17: temperature 1e-45 beside 6 running requests made all 7 fail with a 500."""
    import concurrent.futures

    prompts = [f"{PROMPTS[i % 3]} {i}" for i in range(6)]
    expected = [text for text, _ in _greedy(llm, prompts, max_tokens=64, ignore_eos=True)]

    def complete(prompt, **extra):
        return client.completions.create(model=MODEL, prompt=prompt, max_tokens=64, temperature=0,
                                         extra_body={"ignore_eos": True}, **extra).choices[0].text

    with concurrent.futures.ThreadPoolExecutor(7) as pool:
        running = [pool.submit(complete, prompt) for prompt in prompts]
        tiny = pool.submit(client.completions.create, model=MODEL, prompt=PROMPTS[0], max_tokens=64,
                           temperature=1e-45, stream=True)
        streamed = "".join(chunk.choices[0].text for chunk in tiny.result(timeout=120))
        assert [future.result(timeout=120) for future in running] == expected
    assert streamed == _greedy(llm, PROMPTS[:1], max_tokens=64)[0][0]   # a tiny temperature is greedy
    for field, value in (("top_k", 2**63), ("seed", 2**64)):
        with pytest.raises(openai.BadRequestError) as raised:
            client.completions.create(model=MODEL, prompt="hi", max_tokens=4, temperature=1.0, extra_body={field: value})
        assert raised.value.body["param"] == field
    stats = _stats(server)
    assert (stats["num_used_slots"], stats["num_used_pages"]) == (0, 0)


def test_a_request_failing_mid_run_through_llm_generate_leaves_the_others_identical(llm):
    """The runtime's own isolation on the real model: one request's sampling breaks after validation
    (its temperature becomes NaN mid-run) among six running ones; the six finish with the tokens they
    get without it, the offender gets its error, and no slot or page stays in use."""
    prompts = [f"{PROMPTS[i % 3]} {i}" for i in range(6)]
    params = SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True)
    without = [o.outputs[0].token_ids for o in llm.generate(prompts, params)]
    offender = SamplingParams(max_tokens=24, temperature=1.0, seed=0, ignore_eos=True)
    real_step, steps = llm.engine.step, []

    def step():
        steps.append(1)
        if len(steps) == 4:
            offender.temperature = float("nan")
        return real_step()

    llm.engine.step = step
    try:
        outputs = llm.generate(prompts + ["offender"], [params] * 6 + [offender])
    finally:
        llm.engine.step = real_step
    assert [o.outputs[0].token_ids for o in outputs[:6]] == without
    assert "probability tensor" in outputs[6].error
    assert (llm.engine.cache_manager.num_used_slots, llm.engine.cache_manager.num_used_pages) == (0, 0)
