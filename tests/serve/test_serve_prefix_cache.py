"""The server reports prefix-cache reuse: ``usage.prompt_tokens_details.cached_tokens`` per request
(memory tokens excluded, like ``prompt_tokens``) and the hit rate in ``/stats`` (tiny preset)."""
from __future__ import annotations

import httpx
import openai
import pytest

from serve_server_thread import ServerThread
from trtllm_flash.serve.server import build_server_app

PAGE = 8
MEMORY = 4  # the tiny preset's memory tokens


@pytest.fixture(scope="module")
def server():
    overrides = {"max_seq_len": 128, "max_batch_size": 2,
                 "kv_cache_config": {"tokens_per_block": PAGE, "max_tokens": 1024, "enable_block_reuse": True}}
    with ServerThread(build_server_app("tiny", overrides=overrides)) as running:
        yield running


def test_cached_tokens_and_hit_rate(server):
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
    prompt = list(range(10, 40))  # 30 text tokens + 4 memory tokens = 34: its first 4 pages are shareable
    usages = [client.completions.create(model="tiny", prompt=prompt, max_tokens=3, temperature=0).usage for _ in range(3)]
    assert [u.prompt_tokens for u in usages] == [30, 30, 30]
    # 1st: only the memory tokens (not reported); 2nd: stops its first chunk at the last shared page
    # boundary (32) to snapshot it; 3rd: resumes there
    assert [u.prompt_tokens_details.cached_tokens for u in usages] == [0, 0, 4 * PAGE - MEMORY]
    stats = httpx.get(server.base_url + "/stats", timeout=30).json()
    assert stats["num_reused_tokens"] == 3 * MEMORY + (4 * PAGE - MEMORY)
    assert stats["prefix_cache_hit_rate"] == pytest.approx(stats["num_reused_tokens"] / (3 * (30 + MEMORY)))
    assert stats["num_used_pages"] == 0 and stats["num_cached_pages"] > 0
