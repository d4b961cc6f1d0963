"""The ``SamplingParams`` the engine receives carry every sampling field of the request, for completions and
chat, streamed or not (the server built with the runtime's real ``SamplingParams``, over a recording fake
engine)."""
from __future__ import annotations

import openai
import pytest

from serve_fakes import NUM_MEMORY_TOKENS, ByteTokenizer, FakeEngine
from serve_server_thread import ServerThread
from trtllm_flash.sampling_params import SamplingParams
from trtllm_flash.serve.app import build_app
from trtllm_flash.serve.engine_loop import EngineLoop
from trtllm_flash.serve.generation import ServedModel

MODEL = "fake-model"
MAX_SEQ_LEN = 64
FIELDS = dict(max_tokens=7, temperature=0.7, top_p=0.85, seed=42, stop=["zz", "yy"])
EXTENSIONS = dict(top_k=5, ignore_eos=True)  # not in the OpenAI client's signature: sent as extra body
EXPECTED = SamplingParams(**FIELDS, **EXTENSIONS)


class RecordingEngine(FakeEngine):
    def __init__(self):
        super().__init__()
        self.received = []

    def add_request(self, request_id, prompt_token_ids, sampling_params):
        self.received.append((list(prompt_token_ids), sampling_params))
        super().add_request(request_id, prompt_token_ids, sampling_params)


@pytest.fixture(scope="module")
def engine():
    return RecordingEngine()


@pytest.fixture(scope="module")
def client(engine):
    model = ServedModel(name=MODEL, tokenizer=ByteTokenizer(), max_seq_len=MAX_SEQ_LEN,
                        num_memory_tokens=NUM_MEMORY_TOKENS, make_sampling_params=SamplingParams)
    loop = EngineLoop(engine, max_running=engine.max_batch_size, max_waiting=8, stats=lambda e: e.cache_stats())
    with ServerThread(build_app(model, loop)) as running:
        yield openai.OpenAI(base_url=running.base_url + "/v1", api_key="unused", max_retries=0, timeout=30)


def received(engine):
    prompt, params = engine.received[-1]
    assert isinstance(params, SamplingParams)
    return prompt, params


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_completion_fields_reach_the_engine(client, engine, stream):
    result = client.completions.create(model=MODEL, prompt="hello", stream=stream, extra_body=EXTENSIONS, **FIELDS)
    if stream:
        list(result)
    prompt, params = received(engine)
    assert prompt == ByteTokenizer().encode("hello")
    assert params == EXPECTED  # every field, the defaults of the rest included (stop_token_ids, n)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_chat_fields_reach_the_engine(client, engine, stream):
    messages = [{"role": "user", "content": "hi"}]
    result = client.chat.completions.create(model=MODEL, messages=messages, stream=stream, extra_body=EXTENSIONS, **FIELDS)
    if stream:
        list(result)
    prompt, params = received(engine)
    assert prompt == ByteTokenizer().apply_chat_template(messages)
    assert params == EXPECTED


def test_chat_max_completion_tokens_and_greedy(client, engine):
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_completion_tokens=3,
                                   temperature=0, top_p=1, seed=7)
    assert received(engine)[1] == SamplingParams(max_tokens=3, temperature=0.0, top_p=1.0, seed=7)


def test_defaults_fill_the_room_left_by_the_prompt(client, engine):
    """Unset fields take the OpenAI defaults (temperature 1) and max_tokens fills max_seq_len."""
    client.completions.create(model=MODEL, prompt="abcd")
    prompt, params = received(engine)
    assert params == SamplingParams(max_tokens=MAX_SEQ_LEN - len(prompt), temperature=1.0)
