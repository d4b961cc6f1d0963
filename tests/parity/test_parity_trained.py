"""Parity on trained weights: the shipped ``nemotron-flash-demo`` checkpoint (fp32, CPU) built with every transform
of ``examples/auto_deploy/nemotron_flash.yaml`` and run by the standalone runtime, against the eager reference, on
held-out prose (``data/held_out.json``: paragraphs of documents the model never trained on).

* per-token logits within 1e-4 through chunked prefill and mixed batches (prefill chunks of several sequences
  beside decodes), and the held-out perplexity of the built model equal to the reference's within 1e-4 relative;
* greedy continuations of 64 tokens through ``LLM`` -> Engine (chunked prefill, more prompts than slots)
  identical to the reference's for several prompts.
"""
import json
import math
from pathlib import Path

import pytest
import torch

from driver import Driver, reference_logits
from trtllm_flash.build import build_model, transform_overrides
from trtllm_flash.llm import LLM, SamplingParams
from trtllm_flash.llm_args import load_llm_args
from trtllm_flash.loading import load_model, load_tokenizer, resolve_checkpoint_dir
from trtllm_flash.transforms import merge_transforms

MODEL = "nemotron-flash-demo"
YAML = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "nemotron_flash.yaml"
HELD_OUT = Path(__file__).resolve().parent / "data" / "held_out.json"
ATOL = 1e-4
PPL_RTOL = 1e-4
NEW_TOKENS = 64
CHUNK = 32


@pytest.fixture(scope="module")
def args():
    return load_llm_args([YAML], {
        "model": MODEL, "device": "cpu", "dtype": "float32", "max_batch_size": 4, "max_seq_len": 320,
        "max_num_tokens": CHUNK, "kv_cache_config": {"tokens_per_block": 16, "max_tokens": 1280},
    })


@pytest.fixture(scope="module")
def built(args):
    return build_model(args.for_build(), progress=None)


@pytest.fixture(scope="module")
def reference():
    return load_model(MODEL, dtype=torch.float32, device="cpu").eval()


@pytest.fixture(scope="module")
def tokenizer(reference):
    return load_tokenizer(MODEL, reference.config)


@pytest.fixture(scope="module")
def paragraphs():
    return json.loads(HELD_OUT.read_text())["paragraphs"]


def max_diff(actual, expected):
    return (actual - expected).abs().max().item()


def nll(logits, tokens, num_memory):
    """Summed next-token NLL of the text tokens (those after the memory prefix) from ``logits [len(tokens), V]``."""
    targets = torch.tensor(tokens[num_memory:])
    return torch.nn.functional.cross_entropy(logits[num_memory - 1 : -1].double(), targets, reduction="sum").item()


def test_every_transform_of_the_yaml_ran(args, built):
    expected = [name for name, config in merge_transforms(transform_overrides(args.for_build())).items() if config.enabled]
    ran = [report.name for report in built.reports if report.enabled]
    assert ran == expected and {"fuse_mamba_a_log", "gather_logits_before_lm_head"} <= set(ran)


def test_held_out_logits_and_perplexity_in_chunked_mixed_batches(built, reference, tokenizer, paragraphs):
    """Four held-out paragraphs arrive at different steps, prefill in chunks of 32 beside the others' decodes."""
    num_memory = len(tokenizer.memory_token_ids)
    prompts = [tokenizer.encode(text) for text in paragraphs[:4]]
    assert all(len(p) > 2 * CHUNK for p in prompts) and max(map(len, prompts)) < 280
    driver = Driver(built, max_batch_size=4, max_seq_len=320, page_size=16)
    arrivals = {0: [0, 1], 2: [2], 3: [3]}
    live, built_logits, decodes_checked = [], {}, 0
    for step in range(12):
        for i in arrivals.get(step, []):
            live.append((i, driver.add(prompts[i])))
        work = []
        for i, seq in live:
            if seq.cached < len(prompts[i]):
                work.append(((i, seq), min(CHUNK, len(prompts[i]) - seq.cached)))
        for i, seq in live:
            if seq.cached >= len(prompts[i]):
                seq.tokens.append(int(reference_logits(reference, seq.tokens)[-1].argmax()))
                work.append(((i, seq), 1))
        outputs = driver.step([(seq, n) for (_, seq), n in work])
        for ((i, seq), n), logits in zip(work, outputs):
            expected = reference_logits(reference, seq.tokens[: seq.cached])[-n:]
            assert max_diff(logits, expected) <= ATOL, f"paragraph {i}, tokens {seq.cached - n}..{seq.cached}"
            if seq.cached <= len(prompts[i]):
                built_logits.setdefault(i, []).append(logits)
            else:
                decodes_checked += 1
    assert sorted(built_logits) == [0, 1, 2, 3] and decodes_checked >= 8
    built_nll = ref_nll = 0.0
    count = 0
    for i, tokens in enumerate(prompts):
        logits = torch.cat(built_logits[i])
        assert logits.shape[0] == len(tokens)
        built_nll += nll(logits, tokens, num_memory)
        ref_nll += nll(reference_logits(reference, tokens), tokens, num_memory)
        count += len(tokens) - num_memory
    built_ppl, ref_ppl = math.exp(built_nll / count), math.exp(ref_nll / count)
    assert abs(built_ppl - ref_ppl) <= PPL_RTOL * ref_ppl, (built_ppl, ref_ppl)
    unigram = json.loads((Path(resolve_checkpoint_dir(MODEL)) / "training.json").read_text())["perplexity"]["unigram"]
    assert ref_ppl < unigram / 2, f"trained weights should beat the unigram baseline ({unigram:.0f}) well: {ref_ppl:.1f}"


def test_greedy_continuations_of_64_tokens_match_the_reference(args, built, reference, tokenizer, paragraphs):
    """Five prompts (first words of held-out paragraphs) through LLM -> Engine: 4 slots, chunks of 32 tokens."""
    prompts = [" ".join(text.split()[:12]) for text in paragraphs[3:8]]
    llm = LLM.from_parts(built, tokenizer, args)
    outputs = llm.generate(prompts, SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0, ignore_eos=True))
    for prompt, out in zip(prompts, outputs):
        ids = torch.tensor([out.prompt_token_ids])
        expected = reference.generate(ids, NEW_TOKENS)[0, ids.shape[1]:].tolist()
        assert len(out.outputs[0].token_ids) == NEW_TOKENS
        assert out.outputs[0].token_ids == expected, prompt
    stats = llm.engine.stats
    assert stats["num_used_pages"] == 0 and stats["num_used_slots"] == 0
