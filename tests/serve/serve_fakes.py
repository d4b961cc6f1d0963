"""A fake engine and tokenizer that follow the runtime's contract, for server tests that need
control the real runtime does not give (blocking steps, exact cache bookkeeping, injected failures)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

NUM_MEMORY_TOKENS = 3
TEXT_VOCAB = 256


class ByteTokenizer:
    """One token per UTF-8 byte; memory tokens have ids 256, 257, 258 and are prepended on encode."""

    text_vocab_size = TEXT_VOCAB
    memory_token_ids = list(range(TEXT_VOCAB, TEXT_VOCAB + NUM_MEMORY_TOKENS))

    def __init__(self):
        self.encoded_chars = 0   # characters encoded so far (tests check what was never tokenized)

    def encode(self, text: str) -> List[int]:
        self.encoded_chars += len(text)
        return self.memory_token_ids + list(text.encode())

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return bytes(i for i in ids if i < TEXT_VOCAB).decode(errors="replace")

    def apply_chat_template(self, conversation, add_generation_prompt: bool = True) -> List[int]:
        text = "".join(f"<{m['role']}>{m['content']}" for m in conversation)
        return self.encode(text + ("<assistant>" if add_generation_prompt else ""))


@dataclass
class FakeSamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: Optional[int] = None
    stop: List[str] = field(default_factory=list)   # left to the server's detokenizer in these tests
    ignore_eos: bool = False

    def __post_init__(self):
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass
class Delta:
    request_id: str
    new_token_ids: List[int]
    finished: bool
    finish_reason: Optional[str]
    error: Optional[str] = None
    num_cached_tokens: int = 0


class FakeEngine:
    """Emits the bytes of ``answer`` cyclically, one token per step per running request.

    A request holds one slot and one page per 4 tokens while running. ``token_budget`` (when a test
    sets it) is the number of steps that may still produce tokens; at 0 ``step`` makes no progress, so
    a test can hold requests mid-generation. ``fail_next_step`` makes one step raise;
    ``broken`` makes ``has_unfinished_requests`` raise (the loop itself cannot go on); a request whose
    prompt holds the token ``poison`` (when a test sets it) fails alone (an error delta, as the runtime reports a request
    whose step failed) after its first token.
    """

    def __init__(self, answer: bytes = b"abcdefghij", max_batch_size: int = 4):
        self.answer = answer
        self.max_batch_size = max_batch_size
        self.waiting: List[str] = []
        self.running: Dict[str, List[int]] = {}
        self.params: Dict[str, FakeSamplingParams] = {}
        self.generated: Dict[str, int] = {}
        self.token_budget: Optional[int] = None
        self.fail_next_step = False
        self.broken = False
        self.aborted: List[str] = []
        self.prompts: Dict[str, List[int]] = {}
        self.poison: Optional[int] = None

    def add_request(self, request_id, prompt_token_ids, sampling_params):
        if request_id in self.params:
            raise ValueError(f"duplicate request id {request_id}")
        self.params[request_id] = sampling_params
        self.generated[request_id] = 0
        self.waiting.append(request_id)
        self.prompts[request_id] = list(prompt_token_ids)

    def abort_request(self, request_id):
        self.aborted.append(request_id)
        self.running.pop(request_id, None)
        if request_id in self.waiting:
            self.waiting.remove(request_id)
            del self.prompts[request_id]
        self.params.pop(request_id, None)

    def has_unfinished_requests(self) -> bool:
        if self.broken:
            raise RuntimeError("engine state corrupted")
        return bool(self.waiting or self.running)

    def step(self) -> List[Delta]:
        if self.fail_next_step:
            self.fail_next_step = False
            raise RuntimeError("injected failure")
        if self.token_budget is not None:
            if self.token_budget == 0:
                time.sleep(0.001)
                return []
            self.token_budget -= 1
        while self.waiting and len(self.running) < self.max_batch_size:
            request_id = self.waiting.pop(0)
            self.running[request_id] = self.prompts.pop(request_id)
        deltas = []
        for request_id in list(self.running):
            count = self.generated[request_id]
            token = self.answer[count % len(self.answer)]
            self.generated[request_id] = count + 1
            self.running[request_id].append(token)
            if count == 1 and self.poison is not None and self.poison in self.running[request_id]:
                del self.running[request_id]
                del self.params[request_id]
                deltas.append(Delta(request_id, [], True, None, "the engine step failed: poisoned"))
                continue
            done = count + 1 >= self.params[request_id].max_tokens
            deltas.append(Delta(request_id, [token], done, "length" if done else None))
            if done:
                del self.running[request_id]
                del self.params[request_id]
        return deltas

    def cache_stats(self) -> Dict[str, int]:
        pages = sum((len(tokens) + 3) // 4 for tokens in self.running.values())
        return {"num_used_pages": pages, "num_used_slots": len(self.running)}
