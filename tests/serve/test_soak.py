"""Soak: >= 1000 mixed requests from 32 concurrent clients against ``trtllm-flash serve tiny``.

About 10 % are cancelled mid-stream and 5 % are invalid (prompts up to max_seq_len + 100 tokens,
bad sampling values, n > 1, unknown model, malformed JSON, and issue 17's hostile requests: 64-bit
top_k / seed, booleans for numbers, strings for booleans, a number as chat text, a lone surrogate,
20,000 stop strings, a 5 MiB body); 2 % are valid but odd (temperature 1e-45, no max_tokens).
Afterwards every valid request must have a complete answer, every invalid one a 4xx (413 for the
body), no answer may be a 5xx, the server must be healthy, and the cache manager must report zero
KV pages and state slots in use. Prints (and writes to the test's tmp dir) the requests/s, p50/p99
latency and the answers' status counts.
"""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from serve_soak_client import INVALID_KINDS, ODD_VALID_KINDS, WorkloadShape, plan_workload, problems, run_workload, summarize
from serve_subprocess import ServeProcess
from trtllm_flash.config import NemotronFlashConfig
from trtllm_flash.loading import load_tokenizer

MAX_SEQ_LEN = 192
CONCURRENCY = 32


@pytest.mark.slow
def test_soak_mixed_hostile_workload(tmp_path):
    flags = ["--max_seq_len", str(MAX_SEQ_LEN), "--max_batch_size", "16", "--max_waiting_requests", "64"]
    with ServeProcess("tiny", flags) as server:
        tokenizer = load_tokenizer("tiny", NemotronFlashConfig.from_preset("tiny"))
        shape = WorkloadShape(model="tiny", max_seq_len=MAX_SEQ_LEN, num_memory_tokens=len(tokenizer.memory_token_ids),
                              text_vocab_size=tokenizer.text_vocab_size, num_requests=1000, max_new_tokens=8)
        result = asyncio.run(run_workload(server.base_url, plan_workload(shape), CONCURRENCY, deadline_s=270))
        outcomes = result["outcomes"]

        deadline = time.monotonic() + 30
        while httpx.get(server.base_url + "/stats", timeout=30).json()["requests_in_flight"]:
            assert time.monotonic() < deadline, "requests still in flight 30 s after the last answer"
            time.sleep(0.1)
        stats = httpx.get(server.base_url + "/stats", timeout=30).json()
        health = httpx.get(server.base_url + "/health", timeout=30)
        server_log = server.log()

    summary = summarize(outcomes, result["elapsed_s"], CONCURRENCY)
    summary["server_stats_after"] = stats
    print("\nsoak:", json.dumps(summary, indent=1))
    (tmp_path / "serve_soak.json").write_text(json.dumps(summary, indent=1))

    assert len(outcomes) == shape.num_requests
    found = problems(outcomes)
    assert found == [], f"{len(found)} problems, first: {found[:5]}\nserver log (tail):\n{server_log[-3000:]}"
    assert health.status_code == 200
    assert (stats["num_used_pages"], stats["num_used_slots"]) == (0, 0)
    assert stats["requests_aborted"] >= 1
    assert 0.05 <= summary["counts"]["cancel"] / len(outcomes) <= 0.15
    assert 0.02 <= sum(summary["counts"].get(kind, 0) for kind in INVALID_KINDS) / len(outcomes)
    assert set(INVALID_KINDS) | set(ODD_VALID_KINDS) <= set(summary["counts"])
    assert sum(n for status, n in summary["statuses"].items() if status >= 500) == 0
