"""Issue 17 over the fake engine: hostile or careless requests get a 4xx naming the field (OpenAI's
``param`` form), never a 500 or a stalled server; a request the engine fails gets its own 500 while
the others finish; limits are checked before tokenizing; the OpenAPI document lists what is sent;
shutdown answers requests it cuts short with a JSON 503 or a stream error event."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from serve_fakes import NUM_MEMORY_TOKENS, ByteTokenizer, FakeEngine, FakeSamplingParams
from serve_server_thread import ServerThread
from trtllm_flash.serve.app import build_app
from trtllm_flash.serve.engine_loop import EngineLoop
from trtllm_flash.serve.generation import ServedModel

MODEL = "fake-model"
MAX_SEQ_LEN = 64
MAX_BODY_BYTES = 64 * 1024


def _serve(engine: FakeEngine, tokenizer=None, grace_s: float = 5.0, **model_fields) -> ServerThread:
    fields = dict(name=MODEL, tokenizer=tokenizer or ByteTokenizer(), max_seq_len=MAX_SEQ_LEN,
                  num_memory_tokens=NUM_MEMORY_TOKENS, make_sampling_params=FakeSamplingParams, max_chars_per_token=1)
    loop = EngineLoop(engine, max_running=engine.max_batch_size, max_waiting=16, stats=lambda e: e.cache_stats())
    return ServerThread(build_app(ServedModel(**{**fields, **model_fields}), loop, max_body_bytes=MAX_BODY_BYTES),
                        grace_s=grace_s)


@pytest.fixture(scope="module")
def engine():
    return FakeEngine(max_batch_size=8)


@pytest.fixture(scope="module")
def server(engine):
    with _serve(engine) as running:
        yield running


def _post(server, path: str, body, **kwargs) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(server.base_url + path, content=body, headers={"Content-Type": "application/json"},
                          timeout=30, **kwargs)
    return httpx.post(server.base_url + path, json=body, timeout=30, **kwargs)


COMPLETION = {"model": MODEL, "prompt": "hi", "max_tokens": 3}
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


@pytest.mark.parametrize("path, changes, param", [
    ("/v1/completions", {"max_tokens": True}, "max_tokens"),
    ("/v1/completions", {"prompt": [True, False]}, "prompt[0]"),
    ("/v1/completions", {"prompt": [1, "2"]}, "prompt[1]"),
    ("/v1/completions", {"prompt": {"text": "hi"}}, "prompt"),
    ("/v1/completions", {"stream": "yes"}, "stream"),
    ("/v1/completions", {"temperature": "0.5"}, "temperature"),
    ("/v1/completions", {"seed": 2**64}, "seed"),
    ("/v1/completions", {"top_k": 2**63}, "top_k"),
    ("/v1/completions", {"top_k": -1}, "top_k"),
    ("/v1/completions", {"stop": ["x"] * 2_000}, "stop"),
    ("/v1/completions", {"stop": ["ok", "y" * 5000]}, "stop[1]"),
    ("/v1/completions", {"stop": 5}, "stop"),
    ("/v1/completions", {"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": 123}]}]},
     "messages[0].content[0].text"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
     "messages[0].content[0].text"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages[1].content[0].type"),
    ("/v1/chat/completions", {"max_completion_tokens": 10 ** 6}, "max_completion_tokens"),
])
def test_client_mistakes_are_400_naming_the_field(server, path, changes, param):
    response = _post(server, path, {**(CHAT if "chat" in path else COMPLETION), **changes})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    assert error["message"]


@pytest.mark.parametrize("path, raw", [
    ("/v1/completions", '{"model": "fake-model", "prompt": "a\\ud800b", "max_tokens": 2}'),
    ("/v1/chat/completions", '{"model": "fake-model", "messages": [{"role": "user", "content": "\\udfff"}]}'),
])
def test_lone_surrogate_is_400_and_the_connection_stays_usable(server, path, raw):
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        response = http.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and "Unicode" in response.json()["error"]["message"]
        assert response.json()["error"]["param"] in ("prompt", "messages[0].content")
        assert http.post("/v1/completions", json=COMPLETION).status_code == 200   # same keep-alive connection


def test_tiny_temperature_is_greedy_not_an_error(server):
    response = _post(server, "/v1/completions", {**COMPLETION, "temperature": 1e-45})
    assert response.status_code == 200 and response.json()["choices"][0]["text"] == "abc"


def test_oversized_body_is_413_without_reading_it(server):
    big = json.dumps({**COMPLETION, "prompt": "x" * (MAX_BODY_BYTES + 1)})
    response = _post(server, "/v1/completions", big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"

    def chunks():   # no Content-Length: the bound is applied while reading
        yield big[: MAX_BODY_BYTES // 2].encode()
        yield big[MAX_BODY_BYTES // 2:].encode()

    response = httpx.post(server.base_url + "/v1/completions", content=chunks(), timeout=30,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_prompt_too_long_to_fit_is_refused_before_tokenizing():
    tokenizer = ByteTokenizer()
    with _serve(FakeEngine(), tokenizer=tokenizer) as server:
        response = _post(server, "/v1/completions", {**COMPLETION, "prompt": "y" * (MAX_SEQ_LEN + 1)})
        assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"
        chat = _post(server, "/v1/chat/completions",
                     {**CHAT, "messages": [{"role": "user", "content": "z" * (MAX_SEQ_LEN + 1)}]})
        assert chat.status_code == 400 and chat.json()["error"]["param"] == "messages"
        assert tokenizer.encoded_chars == 0


class _BlockingTokenizer(ByteTokenizer):
    """Blocks in ``encode`` until released (a prompt that takes long to tokenize); raises for 'BOOM'."""

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def encode(self, text: str):
        if text == "BOOM":
            raise TypeError("tokenizer bug")
        if text == "slow":
            self.entered.set()
            self.release.wait(30)
        return super().encode(text)


def test_tokenizing_runs_off_the_event_loop_and_a_crash_is_one_json_500():
    tokenizer = _BlockingTokenizer()
    with _serve(FakeEngine(), tokenizer=tokenizer) as server, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_post, server, "/v1/completions", {**COMPLETION, "prompt": "slow"})
        assert tokenizer.entered.wait(30)
        assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200   # while it tokenizes
        assert _post(server, "/v1/completions", COMPLETION).status_code == 200
        tokenizer.release.set()
        assert slow.result(timeout=30).status_code == 200
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            crashed = http.post("/v1/completions", json={**COMPLETION, "prompt": "BOOM"})
            assert crashed.status_code == 500 and crashed.json()["error"]["code"] == "internal_error"
            assert http.post("/v1/completions", json=COMPLETION).status_code == 200   # connection kept


def test_default_max_tokens_is_what_fits_in_the_kv_pool():
    """Issue 17: a request without max_tokens was refused when the pool held less than max_seq_len."""
    with _serve(FakeEngine(), max_request_tokens=24) as server:
        whole = _post(server, "/v1/completions", {"model": MODEL, "prompt": "hello"})
        assert whole.status_code == 200, whole.text
        assert whole.json()["usage"]["completion_tokens"] == 24 - NUM_MEMORY_TOKENS - 5
        too_many = _post(server, "/v1/completions", {"model": MODEL, "prompt": "hello", "max_tokens": 17})
        assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "max_tokens"
        assert "KV cache holds 24 tokens" in too_many.json()["error"]["message"]


def test_a_request_the_engine_fails_gets_its_own_500_the_others_finish(server, engine):
    engine.poison = ord("!")
    try:
        bodies = [{**COMPLETION, "prompt": f"req{i}", "max_tokens": 8} for i in range(6)]
        bodies.insert(3, {**COMPLETION, "prompt": "bad!", "max_tokens": 8})
        with ThreadPoolExecutor(len(bodies)) as pool:
            responses = list(pool.map(lambda body: _post(server, "/v1/completions", body), bodies))
    finally:
        engine.poison = None
    offender = responses.pop(3)
    assert offender.status_code == 500 and "poisoned" in offender.json()["error"]["message"]
    assert [r.status_code for r in responses] == [200] * 6
    assert {r.json()["choices"][0]["text"] for r in responses} == {"abcdefgh"}


def test_405_carries_allow_and_404_is_json(server):
    response = httpx.get(server.base_url + "/v1/completions", timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "invalid_request_error"
    missing = httpx.get(server.base_url + "/v1/nothing", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_openapi_documents_the_codes_really_sent(server):
    paths = httpx.get(server.base_url + "/openapi.json", timeout=10).json()["paths"]
    for path in ("/v1/completions", "/v1/chat/completions"):
        assert set(paths[path]["post"]["responses"]) == {"200", "400", "413", "429", "500", "503"}
    assert set(paths["/health"]["get"]["responses"]) == {"200", "503"}


def test_shutdown_answers_requests_still_running_with_503_and_stream_error_events():
    engine = FakeEngine()
    engine.token_budget = 0   # nothing finishes: both requests are still running at shutdown
    server = _serve(engine, grace_s=2.0).__enter__()
    results = {}

    def whole():
        results["whole"] = _post(server, "/v1/completions", {**COMPLETION, "max_tokens": 20})

    def streamed():
        with httpx.stream("POST", server.base_url + "/v1/completions", timeout=30,
                          json={**COMPLETION, "max_tokens": 20, "stream": True}) as response:
            results["stream"] = (response.status_code, [line for line in response.iter_lines() if line])

    threads = [threading.Thread(target=whole), threading.Thread(target=streamed)]
    for thread in threads:
        thread.start()
    deadline = 100
    while len(engine.running) + len(engine.prompts) < 2 and deadline:
        threading.Event().wait(0.05)
        deadline -= 1
    server.__exit__(None, None, None)
    for thread in threads:
        thread.join(timeout=30)
    assert results["whole"].status_code == 503
    assert results["whole"].json()["error"]["code"] == "shutting_down"
    status, lines = results["stream"]
    assert status == 200 and lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2].removeprefix("data: "))["error"]["code"] == "shutting_down"
