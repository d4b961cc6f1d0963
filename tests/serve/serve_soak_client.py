"""A bounded, mixed, hostile workload for the server, and the checks of its outcome.

:func:`plan_workload` draws the requests (seeded): valid completions and chats, streamed or not,
with random prompt lengths and max_tokens; about 10 % streamed requests the client cancels after a
few chunks; about 5 % invalid ones (prompt longer than max_seq_len by up to 100 tokens, bad
sampling values, n > 1, an unknown model, malformed JSON, and the hostile requests of issue 17:
top_k / seed past 64 bits, a boolean max_tokens or token id, a string for a boolean, a number as a
chat text part, a lone surrogate, thousands of stop strings, a body over the size limit); and, among
the valid ones, a temperature of 1e-45 (greedy) and requests without max_tokens (they run to what
fits). :func:`run_workload` sends them from ``concurrency`` asyncio clients over httpx and records
what came back, with a deadline.
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import httpx

INVALID_KINDS = ("prompt_too_long", "bad_temperature", "n_too_large", "unknown_model", "malformed_json",
                 "huge_top_k", "huge_seed", "bool_max_tokens", "bool_token_id", "string_stream", "number_text_part",
                 "lone_surrogate", "many_stops", "oversized_body")
#: valid requests with an unusual shape: kind -> what the body gets
ODD_VALID_KINDS = ("tiny_temperature", "no_max_tokens")
#: bodies the server must refuse with 413 (it bounds them at 4 MiB by default)
OVERSIZED_BODY_BYTES = 5 * 1024 * 1024


@dataclass
class PlannedRequest:
    index: int
    kind: str                       # "valid", "cancel", one of ODD_VALID_KINDS or one of INVALID_KINDS
    path: str                       # "/v1/completions" or "/v1/chat/completions"
    body: Any                       # dict, or raw bytes for malformed JSON
    stream: bool
    max_tokens: int
    cancel_after_chunks: int = 0


@dataclass
class Outcome:
    request: PlannedRequest
    status: int = 0
    finish_reason: Optional[str] = None
    completion_tokens: Optional[int] = None
    text: str = ""
    saw_done: bool = False
    error: Optional[str] = None
    latency_s: float = 0.0


@dataclass
class WorkloadShape:
    model: str
    max_seq_len: int
    num_memory_tokens: int
    text_vocab_size: int
    num_requests: int = 1000
    max_new_tokens: int = 8
    cancel_fraction: float = 0.10
    invalid_fraction: float = 0.05
    odd_valid_fraction: float = 0.02
    seed: int = 0


def plan_workload(shape: WorkloadShape) -> List[PlannedRequest]:
    """The seeded list of requests to send."""
    rng = random.Random(shape.seed)
    room = shape.max_seq_len - shape.num_memory_tokens      # prompt + answer tokens a client may use
    planned = []
    for index in range(shape.num_requests):
        draw = rng.random()
        kind = ("cancel" if draw < shape.cancel_fraction else
                INVALID_KINDS[index % len(INVALID_KINDS)] if draw < shape.cancel_fraction + shape.invalid_fraction
                else ODD_VALID_KINDS[index % 2] if draw > 1 - shape.odd_valid_fraction else "valid")
        # a cancelled request asks for more than it will read, so it is still running when it leaves
        max_tokens = shape.max_new_tokens * 4 if kind == "cancel" else rng.randint(1, shape.max_new_tokens)
        if kind == "prompt_too_long":
            prompt_len = rng.randint(room + 1, shape.max_seq_len + 100)
        else:
            prompt_len = rng.randint(1, room - max_tokens)
        prompt = [rng.randrange(shape.text_vocab_size) for _ in range(prompt_len)]
        stream = kind == "cancel" or rng.random() < 0.5
        chat = kind == "number_text_part" or (
            kind not in ("cancel", "prompt_too_long", "bool_token_id", "lone_surrogate") and rng.random() < 0.3)
        if chat:
            words = " ".join(rng.choice(["hello", "flash", "mamba", "delta", "attention", "token"])
                             for _ in range(rng.randint(1, 3)))
            path, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": words}]}
        else:
            path, body = "/v1/completions", {"prompt": prompt}
        body.update(model=shape.model, max_tokens=max_tokens, temperature=rng.choice([0.0, 0.7, 1.0]),
                    top_p=rng.choice([1.0, 0.9]), seed=rng.randrange(1 << 30), stream=stream)
        if stream:
            body["stream_options"] = {"include_usage": True}
        if kind == "bad_temperature":
            body["temperature"] = -0.5
        elif kind == "n_too_large":
            body["n"] = 2
        elif kind == "unknown_model":
            body["model"] = shape.model + "-missing"
        elif kind == "malformed_json":
            body = json.dumps(body).encode()[:-7]
        elif kind in _HOSTILE:
            body = _HOSTILE[kind](body)
        elif kind == "tiny_temperature":
            body["temperature"] = 1e-45
        elif kind == "no_max_tokens":
            del body["max_tokens"]
            max_tokens = room - prompt_len if not chat else room   # an upper bound: what can fit
        planned.append(PlannedRequest(index, kind, path, body, stream, max_tokens,
                                      cancel_after_chunks=rng.randint(1, 3) if kind == "cancel" else 0))
    return planned


def _set(**fields):
    return lambda body: {**body, **fields}


def _lone_surrogate(body: Dict[str, Any]) -> bytes:
    body = {**body, "prompt": "PLACEHOLDER"}
    return json.dumps(body).replace("PLACEHOLDER", "a\\ud800b").encode()


#: the hostile requests of issue 17: kind -> the body it sends (each must get a 4xx)
_HOSTILE = {
    "huge_top_k": _set(top_k=2**63),
    "huge_seed": _set(seed=2**64),
    "bool_max_tokens": _set(max_tokens=True),
    "bool_token_id": _set(prompt=[True, False]),
    "string_stream": _set(stream="yes"),
    "number_text_part": _set(messages=[{"role": "user", "content": [{"type": "text", "text": 123}]}]),
    "lone_surrogate": _lone_surrogate,
    "many_stops": _set(stop=["x"] * 20_000),
    "oversized_body": _set(prompt="z" * OVERSIZED_BODY_BYTES),
}


async def _send(client: httpx.AsyncClient, request: PlannedRequest) -> Outcome:
    outcome = Outcome(request)
    started = time.perf_counter()
    kwargs = ({"content": request.body, "headers": {"Content-Type": "application/json"}}
              if isinstance(request.body, bytes) else {"json": request.body})
    async with client.stream("POST", request.path, **kwargs) as response:
        outcome.status = response.status_code
        if response.status_code != 200:
            outcome.error = (await response.aread()).decode()
        elif request.stream:
            await _read_events(response, outcome)
        else:
            body = json.loads(await response.aread())
            choice = body["choices"][0]
            outcome.text = choice.get("text", choice.get("message", {}).get("content", ""))
            outcome.finish_reason = choice["finish_reason"]
            outcome.completion_tokens = body["usage"]["completion_tokens"]
    outcome.latency_s = time.perf_counter() - started
    return outcome


async def _read_events(response: httpx.Response, outcome: Outcome) -> None:
    chunks = 0
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line.removeprefix("data: ")
        if data == "[DONE]":
            outcome.saw_done = True
            return
        event = json.loads(data)
        if "error" in event:
            outcome.error = event["error"]["message"]
            continue
        for choice in event.get("choices", []):
            outcome.text += choice.get("text") or (choice.get("delta") or {}).get("content") or ""
            outcome.finish_reason = choice.get("finish_reason") or outcome.finish_reason
        if event.get("usage"):
            outcome.completion_tokens = event["usage"]["completion_tokens"]
        chunks += 1
        if outcome.request.kind == "cancel" and chunks >= outcome.request.cancel_after_chunks:
            return   # leaving the stream context closes the connection mid-answer


async def run_workload(base_url: str, planned: List[PlannedRequest], concurrency: int,
                       deadline_s: float) -> Dict[str, Any]:
    """Send ``planned`` from ``concurrency`` clients; every request and the whole run are bounded."""
    pending: asyncio.Queue = asyncio.Queue()
    for request in planned:
        pending.put_nowait(request)
    outcomes: List[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not pending.empty():
            outcomes.append(await _send(client, pending.get_nowait()))

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(60.0), limits=limits) as client:
        await asyncio.wait_for(asyncio.gather(*(client_loop(client) for _ in range(concurrency))), deadline_s)
    return {"outcomes": outcomes, "elapsed_s": time.perf_counter() - started}


def summarize(outcomes: List[Outcome], elapsed_s: float, concurrency: int) -> Dict[str, Any]:
    """Throughput, latency percentiles (complete valid answers) and counts per request kind."""
    latencies = sorted(o.latency_s for o in outcomes if o.request.kind == "valid")
    counts: Dict[str, int] = {}
    statuses: Dict[int, int] = {}
    for outcome in outcomes:
        counts[outcome.request.kind] = counts.get(outcome.request.kind, 0) + 1
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"requests": len(outcomes), "concurrency": concurrency, "elapsed_s": round(elapsed_s, 2),
            "requests_per_s": round(len(outcomes) / elapsed_s, 2),
            "valid_latency_p50_s": round(percentile(0.50), 4), "valid_latency_p99_s": round(percentile(0.99), 4),
            "completion_tokens": sum(o.completion_tokens or 0 for o in outcomes if o.request.kind == "valid"),
            "counts": counts, "statuses": statuses}


def problems(outcomes: List[Outcome]) -> List[str]:
    """Every way an outcome falls short of what its request deserved (empty when all is well)."""
    found = []
    for o in outcomes:
        r = o.request
        if r.kind in INVALID_KINDS:
            wanted = (413,) if r.kind == "oversized_body" else range(400, 500)
            if o.status not in wanted:
                found.append(f"#{r.index} {r.kind}: status {o.status}, wanted {'413' if r.kind == 'oversized_body' else '4xx'}")
        elif r.kind == "cancel":
            if o.status != 200:
                found.append(f"#{r.index} cancel: status {o.status} ({o.error})")
        elif o.status != 200 or o.error:
            found.append(f"#{r.index} valid: status {o.status}, error {o.error}")
        elif o.finish_reason not in ("stop", "length") or (r.stream and not o.saw_done):
            found.append(f"#{r.index} valid: incomplete (finish_reason {o.finish_reason}, [DONE] {o.saw_done})")
        elif o.completion_tokens is None or not 0 <= o.completion_tokens <= r.max_tokens or (
                o.finish_reason == "length" and o.completion_tokens != r.max_tokens and r.kind != "no_max_tokens"):
            found.append(f"#{r.index} valid: {o.completion_tokens} tokens for max_tokens {r.max_tokens} "
                         f"({o.finish_reason})")
    return found
