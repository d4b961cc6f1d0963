"""The server's behaviour over a fake engine with exact, controllable bookkeeping: response
formats, usage counts, stop strings, every 400 case, 429 on overload, engine failures, and that a
client leaving mid-stream (or mid-answer) aborts its request in the engine."""
from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import openai
import pytest

from serve_fakes import NUM_MEMORY_TOKENS, ByteTokenizer, FakeEngine, FakeSamplingParams
from serve_server_thread import ServerThread
from serve_soak_client import WorkloadShape, plan_workload, problems, run_workload
from trtllm_flash.serve.app import build_app
from trtllm_flash.serve.engine_loop import EngineLoop
from trtllm_flash.serve.generation import ServedModel

MODEL = "fake-model"
MAX_SEQ_LEN = 64


def _serve(engine: FakeEngine, max_waiting: int = 8) -> ServerThread:
    model = ServedModel(name=MODEL, tokenizer=ByteTokenizer(), max_seq_len=MAX_SEQ_LEN,
                        num_memory_tokens=NUM_MEMORY_TOKENS, make_sampling_params=FakeSamplingParams,
                        max_chars_per_token=1)
    loop = EngineLoop(engine, max_running=engine.max_batch_size, max_waiting=max_waiting,
                      stats=lambda e: e.cache_stats())
    return ServerThread(build_app(model, loop))


@pytest.fixture(scope="module")
def engine():
    return FakeEngine()


@pytest.fixture(scope="module")
def server(engine):
    with _serve(engine) as running:
        yield running


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=30)


def _wait_until(condition, timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until true or the bound passes (a wait, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _stats(server) -> dict:
    return httpx.get(server.base_url + "/stats", timeout=10).json()


def test_completion_text_finish_reason_and_usage(client):
    result = client.completions.create(model=MODEL, prompt="hello", max_tokens=5)
    assert result.object == "text_completion" and result.id.startswith("cmpl-")
    assert result.choices[0].text == "abcde"
    assert result.choices[0].finish_reason == "length"
    # memory tokens are not the client's: 5 prompt bytes, not 5 + NUM_MEMORY_TOKENS
    assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (5, 5, 10)


def test_completion_accepts_token_ids(client):
    result = client.completions.create(model=MODEL, prompt=[104, 105], max_tokens=3)
    assert result.choices[0].text == "abc" and result.usage.prompt_tokens == 2


def test_chat_stream_chunks_then_usage(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "abcd"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4
    assert chunks[-1].usage.prompt_tokens == len(b"<user>hi<assistant>")


def test_chat_whole_answer(client):
    result = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert result.choices[0].message.role == "assistant" and result.choices[0].message.content == "abc"


def test_stop_string_cuts_text_and_aborts_request(client, server, engine):
    engine.token_budget = 5   # "abcde": the engine cannot finish the 20 tokens on its own
    try:
        result = client.completions.create(model=MODEL, prompt="x", max_tokens=20, stop=["de", "zz"])
        assert result.choices[0].text == "abc" and result.choices[0].finish_reason == "stop"
        assert _wait_until(lambda: result.id in engine.aborted), "the engine was not told to stop generating"
    finally:
        engine.token_budget = None
    assert _stats(server)["num_used_slots"] == 0


def test_stop_string_streamed(client):
    pieces = [c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="x", max_tokens=20, stop="cd", stream=True)]
    assert "".join(pieces) == "ab"


def test_models_and_health(server):
    models = httpx.get(server.base_url + "/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [MODEL] and models["data"][0]["max_model_len"] == MAX_SEQ_LEN
    assert httpx.get(server.base_url + "/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("body, param, code", [
    ({"model": "other", "prompt": "x"}, "model", "model_not_found"),
    ({"model": MODEL, "prompt": "x", "temperature": 3}, "temperature", "invalid_value"),
    ({"model": MODEL, "prompt": "x", "top_p": 0}, "top_p", "invalid_value"),
    ({"model": MODEL, "prompt": "x", "max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"model": MODEL, "prompt": "x", "n": 2}, "n", None),
    ({"model": MODEL, "prompt": "x", "logprobs": 2}, "logprobs", None),
    ({"model": MODEL, "prompt": "x" * MAX_SEQ_LEN}, "prompt", "context_length_exceeded"),
    ({"model": MODEL, "prompt": "x", "max_tokens": MAX_SEQ_LEN}, "max_tokens", "context_length_exceeded"),
    ({"model": MODEL, "prompt": [1, 300]}, "prompt", None),
    ({"model": MODEL, "prompt": ""}, "prompt", None),
    ({"model": MODEL}, "prompt", "invalid_value"),
])
def test_invalid_completion_requests_are_400(server, body, param, code):
    response = httpx.post(server.base_url + "/v1/completions", json=body, timeout=10)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["code"] == code
    assert error["message"]


def test_invalid_chat_requests_are_400(server):
    url = server.base_url + "/v1/chat/completions"
    for body, param in [({"model": MODEL, "messages": []}, "messages"),
                        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
                        ({"model": MODEL, "messages": [{"role": "user", "content": "x" * MAX_SEQ_LEN}]}, "messages")]:
        response = httpx.post(url, json=body, timeout=10)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, body


def test_malformed_json_is_400(server):
    response = httpx.post(server.base_url + "/v1/completions", content=b'{"model": "fake-model", "prompt": ',
                          headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_openai_client_raises_bad_request(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], n=3)
    assert "n=1" in raised.value.body["message"]


def test_disconnect_mid_stream_aborts_and_frees_cache(engine, server):
    engine.token_budget = 1   # one token, then the request stays running until it is aborted
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as http:
            with http.stream("POST", "/v1/completions",
                             json={"model": MODEL, "prompt": "x", "max_tokens": 50, "stream": True}) as response:
                lines = response.iter_lines()   # kept: dropping the iterator closes the connection
                request_id = json.loads(next(lines).removeprefix("data: "))["id"]
                assert _stats(server)["num_used_slots"] == 1
        assert _wait_until(lambda: request_id in engine.aborted)
    finally:
        engine.token_budget = None
    stats = _stats(server)
    assert (stats["num_used_slots"], stats["num_used_pages"], stats["requests_in_flight"]) == (0, 0, 0)


def test_disconnect_while_waiting_for_whole_answer_aborts(engine, server):
    engine.token_budget = 0
    aborted_before = len(engine.aborted)
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.base_url + "/v1/completions", json={"model": MODEL, "prompt": "y", "max_tokens": 50},
                       timeout=httpx.Timeout(10, read=0.5))
        assert _wait_until(lambda: len(engine.aborted) == aborted_before + 1)
    finally:
        engine.token_budget = None
    stats = _stats(server)
    assert (stats["num_used_slots"], stats["requests_in_flight"]) == (0, 0)


def test_overload_answers_429_not_a_hang():
    engine = FakeEngine(max_batch_size=1)
    engine.token_budget = 0
    with _serve(engine, max_waiting=1) as server:
        body = {"model": MODEL, "prompt": "x", "max_tokens": 2}
        url = server.base_url + "/v1/completions"
        results = []
        held = [threading.Thread(target=lambda: results.append(httpx.post(url, json=body, timeout=30).status_code))
                for _ in range(2)]
        for thread in held:
            thread.start()
        assert _wait_until(lambda: len(engine.prompts) + len(engine.running) == 2)
        refused = httpx.post(url, json=body, timeout=10)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "server_overloaded"
        engine.token_budget = None
        for thread in held:
            thread.join(timeout=30)
        assert results == [200, 200]
        assert httpx.post(url, json=body, timeout=10).status_code == 200


def test_engine_failure_is_500_and_server_recovers():
    engine = FakeEngine()
    engine.fail_next_step = True
    with _serve(engine) as server:
        url = server.base_url + "/v1/completions"
        failed = httpx.post(url, json={"model": MODEL, "prompt": "x", "max_tokens": 3}, timeout=10)
        assert failed.status_code == 500 and "injected failure" in failed.json()["error"]["message"]
        assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
        assert httpx.post(url, json={"model": MODEL, "prompt": "x", "max_tokens": 3}, timeout=10).json()[
            "choices"][0]["text"] == "abc"
        assert _stats(server)["num_used_slots"] == 0 and _stats(server)["requests_in_flight"] == 0


def test_small_mixed_workload_leaves_nothing_behind():
    """The soak harness at small scale over the fake engine: a quick check of the server's bookkeeping."""
    engine = FakeEngine(max_batch_size=4)
    with _serve(engine, max_waiting=64) as server:
        shape = WorkloadShape(model=MODEL, max_seq_len=MAX_SEQ_LEN, num_memory_tokens=NUM_MEMORY_TOKENS,
                              text_vocab_size=128, num_requests=200, cancel_fraction=0.2, invalid_fraction=0.1)
        result = asyncio.run(run_workload(server.base_url, plan_workload(shape), concurrency=16, deadline_s=120))
        assert problems(result["outcomes"]) == []
        assert len(result["outcomes"]) == 200
        assert {"valid", "cancel"} <= {o.request.kind for o in result["outcomes"]}
        assert _wait_until(lambda: _stats(server)["requests_in_flight"] == 0)
        stats = _stats(server)
        assert (stats["num_used_slots"], stats["num_used_pages"]) == (0, 0)
        assert not engine.running and not engine.waiting


def test_dead_engine_loop_fails_requests_and_health_instead_of_hanging():
    engine = FakeEngine()
    with _serve(engine) as server:
        engine.broken = True
        url = server.base_url + "/v1/completions"
        failed = httpx.post(url, json={"model": MODEL, "prompt": "x", "max_tokens": 3}, timeout=10)
        assert failed.status_code == 500 and "engine state corrupted" in failed.json()["error"]["message"]
        assert httpx.get(server.base_url + "/health", timeout=10).status_code == 503
        refused = httpx.post(url, json={"model": MODEL, "prompt": "x", "max_tokens": 3}, timeout=10)
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "engine_unavailable"
