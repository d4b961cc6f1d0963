"""The Python API: ``LLM(model, **llm_args).generate(prompts, SamplingParams(...))``.

``LLM`` builds the model (:func:`trtllm_flash.build.build_model`) and its tokenizer
(:func:`trtllm_flash.loading.load_tokenizer`) and runs an :class:`~trtllm_flash.runtime.engine.Engine`
over them; ``llm.engine`` is that engine (the OpenAI server drives it directly).

Prompts are strings (encoded by the tokenizer, which prepends the memory tokens) or lists of token ids
(the text tokens: the memory tokens are prepended here too). ``prompt_token_ids`` of a result are what
the engine ran, memory tokens included.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from trtllm_flash.llm_args import LlmArgs, load_llm_args
from trtllm_flash.ops.interface import StateCache
from trtllm_flash.runtime.engine import Engine
from trtllm_flash.runtime.sampling import find_stop_string
from trtllm_flash.sampling_params import MAX_SEED, SamplingParams

__all__ = ["LLM", "RequestOutput", "CompletionOutput", "SamplingParams"]

PromptInput = Union[str, Sequence[int]]


@dataclass
class CompletionOutput:
    """One completion: ``token_ids`` as generated (a final stop token included), ``text`` their decoding
    without that stop token and cut before a stop string; ``finish_reason`` "stop" | "length" | "abort"."""

    index: int
    text: str = ""
    token_ids: List[int] = field(default_factory=list)
    finish_reason: Optional[str] = None


@dataclass
class RequestOutput:
    """The result for one prompt; ``error`` says why the request failed (its outputs are then empty);
    ``num_cached_tokens``: tokens of ``prompt_token_ids`` (memory tokens included) taken from the
    engine's prefix cache instead of being prefilled (the first completion's, when ``n`` > 1)."""

    request_id: str
    prompt: Optional[str]
    prompt_token_ids: List[int]
    outputs: List[CompletionOutput] = field(default_factory=list)
    error: Optional[str] = None
    num_cached_tokens: int = 0


class LLM:
    """Build ``model`` (a preset name, a checkpoint directory or a cached Hugging Face id) with the
    :class:`LlmArgs` fields in ``kwargs`` (or a ready ``args``) and generate with it."""

    def __init__(self, model: Optional[str] = None, *, args: Optional[LlmArgs] = None,
                 progress: Optional[Callable[[str], None]] = print, **kwargs: Any):
        self.args = _resolve_args(model, args, kwargs)
        say = progress or (lambda line: None)
        for key, why in self.args.unhonoured():
            say(f"[args] {key}: {why}")
        say(f"[build] {'imports':<16}    ...  model code, kernels, transformers")
        start = time.perf_counter()
        from trtllm_flash.build import build_model
        from trtllm_flash.loading import load_tokenizer

        say(f"[build] {'imports':<16} {time.perf_counter() - start:6.2f}s  model code, kernels, transformers")

        self.built_model = build_model(self.args.for_build(), progress=progress)
        start = time.perf_counter()
        self.tokenizer = load_tokenizer(self.args.tokenizer or self.args.model, self.built_model.config)
        say(f"[build] {'tokenizer':<16} {time.perf_counter() - start:6.2f}s")
        self.engine = _allocate_engine(self.built_model, self.tokenizer, self.args, say)
        self._ids = itertools.count()

    @classmethod
    def from_parts(cls, built_model: Any, tokenizer: Any, args: LlmArgs) -> "LLM":
        """An LLM over an already built model and tokenizer (tests, custom builds)."""
        llm = cls.__new__(cls)
        llm.args = args
        llm.built_model = built_model
        llm.tokenizer = tokenizer
        llm.engine = Engine(built_model, tokenizer, args)
        llm._ids = itertools.count()
        return llm

    def generate(
        self,
        prompts: Union[PromptInput, Sequence[PromptInput]],
        sampling_params: Union[SamplingParams, Sequence[SamplingParams], None] = None,
        use_tqdm: bool = False,
    ) -> List[RequestOutput]:
        """Run every prompt to completion; one :class:`RequestOutput` per prompt, in order.

        ``sampling_params``: one for all prompts or one per prompt (default ``SamplingParams()``).
        A prompt the engine refuses (empty, too long, ...) or fails gets ``error`` set; the others still
        run. ``use_tqdm``: print a progress line (requests finished, tokens, tokens/s) each time a
        request finishes and every few seconds in between. Whatever happens (an exception, Ctrl-C), the
        requests of this call leave the engine with their state slots and KV pages freed.
        """
        items = self._prompts(prompts)
        params = _per_prompt(sampling_params, len(items))
        results: List[RequestOutput] = []
        live: Dict[str, Tuple[RequestOutput, CompletionOutput, SamplingParams]] = {}
        try:
            for (text, ids), prompt_params in zip(items, params):
                result = RequestOutput(str(next(self._ids)), text, ids)
                results.append(result)
                self._submit(result, prompt_params, live)
            self._run(live, _Progress(len(live)) if use_tqdm else None)
        finally:
            if live:
                self._abandon(list(live))
        return results

    def _run(self, live: Dict[str, Tuple[RequestOutput, CompletionOutput, SamplingParams]], progress: Optional["_Progress"]) -> None:
        while live and self.engine.has_unfinished_requests():
            for delta in self.engine.step():
                if delta.request_id not in live:
                    continue
                result, completion, _ = live[delta.request_id]
                completion.token_ids.extend(delta.new_token_ids)
                if progress is not None:
                    progress.tokens += len(delta.new_token_ids)
                if completion.index == 0:
                    result.num_cached_tokens = delta.num_cached_tokens
                if delta.error:
                    result.error = delta.error
                if delta.finished:
                    completion.finish_reason = delta.finish_reason
                    completion.text = self._text(completion, live.pop(delta.request_id)[2])
                    if progress is not None:
                        progress.done += 1
                        progress.report()
            if progress is not None:
                progress.report(every_s=_Progress.INTERVAL_S)

    def _abandon(self, request_ids: List[str]) -> None:
        """Abort ``request_ids`` (frees their slots and pages now) and drain the engine's reports of them."""
        for request_id in request_ids:
            self.engine.abort_request(request_id)
        for _ in range(3):   # the aborts' reports, and a step still in flight
            if not self.engine.has_unfinished_requests():
                return
            try:
                self.engine.step()
            except Exception:   # the requests are freed already; keep the caller's own exception
                return

    def _submit(self, result: RequestOutput, params: SamplingParams, live: Dict[str, Any]) -> None:
        """Add the ``params.n`` engine requests of one prompt (seeds ``seed + i``); on refusal set ``error``."""
        if len(result.prompt_token_ids) <= len(self._memory_ids()):
            result.error = "the prompt is empty; give at least one token"
            return
        added = []
        for index in range(params.n):
            request_id = result.request_id if params.n == 1 else f"{result.request_id}-{index}"
            seed = None if params.seed is None else (params.seed + index) % (MAX_SEED + 1)
            one = params if params.n == 1 else replace(params, n=1, seed=seed)
            try:
                self.engine.add_request(request_id, result.prompt_token_ids, one)
            except ValueError as err:
                result.error = str(err)
                for earlier in added:
                    self.engine.abort_request(earlier)
                    live.pop(earlier)
                result.outputs.clear()
                return
            completion = CompletionOutput(index)
            result.outputs.append(completion)
            live[request_id] = (result, completion, one)
            added.append(request_id)

    def _prompts(self, prompts: Union[PromptInput, Sequence[PromptInput]]) -> List[Tuple[Optional[str], List[int]]]:
        if isinstance(prompts, str) or (isinstance(prompts, (list, tuple)) and prompts and all(isinstance(t, int) for t in prompts)):
            prompts = [prompts]
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a string, a list of strings or a list of token-id lists (non-empty)")
        items = []
        for prompt in prompts:
            if isinstance(prompt, str):
                items.append((prompt, list(self.tokenizer.encode(prompt))))
            elif isinstance(prompt, (list, tuple)):
                items.append((None, self._memory_ids() + list(prompt)))
            else:
                raise ValueError(f"a prompt must be a string or a list of token ids, got {type(prompt).__name__}")
        return items

    def _memory_ids(self) -> List[int]:
        return list(getattr(self.tokenizer, "memory_token_ids", []) or [])

    def _text(self, completion: CompletionOutput, params: SamplingParams) -> str:
        ids = completion.token_ids
        if completion.finish_reason == "stop" and ids and ids[-1] in self.engine.eos_token_ids | set(params.stop_token_ids):
            ids = ids[:-1]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        cut = find_stop_string(text, params.stop) if params.stop else None
        return text if cut is None else text[:cut]


def _allocate_engine(built_model: Any, tokenizer: Any, args: LlmArgs, say: Callable[[str], None]) -> Engine:
    """The engine, saying what its caches take before (state slots) and after (KV pages) allocating them."""
    specs = built_model.cache_specs
    state_bytes = (args.max_batch_size + 1) * sum(s.bytes_per_slot() for s in specs.values() if isinstance(s, StateCache))
    say(f"[cache] allocating {args.max_batch_size} state slots ({_size(state_bytes)}) and the KV pages ...")
    start = time.perf_counter()
    engine = Engine(built_model, tokenizer, args)
    cache = engine.cache_manager
    kv_bytes = sum(t.numel() * t.element_size() for name, t in cache.tensors.items() if not isinstance(specs[name], StateCache))
    say(f"[cache] {'allocated':<16} {time.perf_counter() - start:6.2f}s  state slots {_size(state_bytes)}, KV {_size(kv_bytes)} "
        f"({cache.num_pages - 1} pages of {cache.page_size} tokens; a request holds up to {engine.max_request_tokens} tokens)")
    return engine


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 2**30:.2f} GiB" if num_bytes >= 2**30 else f"{num_bytes / 2**20:.1f} MiB"


class _Progress:
    """The ``use_tqdm`` line: ``[generate] 3/8 requests finished, 412 tokens, 51.2 tok/s``."""

    INTERVAL_S = 5.0

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.tokens = 0
        self.start = self.last = time.perf_counter()

    def report(self, every_s: float = 0.0) -> None:
        now = time.perf_counter()
        if now - self.last < every_s:
            return
        self.last = now
        rate = self.tokens / max(now - self.start, 1e-9)
        print(f"[generate] {self.done}/{self.total} requests finished, {self.tokens} tokens, {rate:.1f} tok/s", flush=True)


def _resolve_args(model: Optional[str], args: Optional[LlmArgs], kwargs: Dict[str, Any]) -> LlmArgs:
    if args is not None:
        base = args.model_dump(exclude_unset=True)
        args = load_llm_args([], base, **({"model": model} if model else {}), **kwargs)
    else:
        args = load_llm_args([], {}, **({"model": model} if model else {}), **kwargs)
    if not args.model:
        raise ValueError("model is required: a preset name (e.g. tiny), a checkpoint directory or a cached Hugging Face id")
    return args


def _per_prompt(sampling_params: Union[SamplingParams, Sequence[SamplingParams], None], count: int) -> List[SamplingParams]:
    if sampling_params is None:
        return [SamplingParams()] * count
    if isinstance(sampling_params, SamplingParams):
        return [sampling_params] * count
    params = list(sampling_params)
    if len(params) != count or not all(isinstance(p, SamplingParams) for p in params):
        raise ValueError(f"sampling_params must be one SamplingParams or one per prompt ({count}), got {len(params)}")
    return params
