"""CI parity through the fast paths (CPU, tiny preset, fp32): the model built with every transform of
``examples/auto_deploy/nemotron_flash.yaml``, its cached and fused ops dispatched to their Triton / fla
implementations (interpreted, :func:`trtllm_flash.ops.dispatch.fast_kernels_on_cpu`), against the eager
reference recomputing each sequence from scratch: logits at every step and greedy tokens.

Measured max abs logits difference over these scenarios: 3.2e-6 (logits of magnitude ~1; fast vs reference
paths of the same built model: 2.2e-6); ``ATOL`` = 1e-5.
What runs: our Triton kernels (paged attention prefill / store / split-K decode, SSD prefill and decode,
causal conv prefill / window store / decode, the delta-rule decode step with its fused prologue, RoPE,
RMSNorm / add+RMSNorm / gated norm / L2 norm, SwiGLU) and, for DeltaNet prefill, fla's
``fused_recurrent_delta_rule`` (the fp32 choice of ``fla_delta_rule``; fla's ``chunk_delta_rule`` needs a GPU
driver even under the interpreter and is bf16 / fp16 only, so it stays a GPU test). The batch-1 GEMVs take
half-precision rows only, so in fp32 ``linear`` / the norm-GEMV ops run their cuBLAS-equivalent branch.
Short sequences keep the interpreter's cost down, but generation runs past the sliding window (16 on the
tiny preset) and the 8-token KV pages wrap its ring.
"""
from pathlib import Path

import pytest
import torch

from driver import Driver, reference_logits
from trtllm_flash.build import build_model
from trtllm_flash.llm_args import load_llm_args
from trtllm_flash.loading import load_model
from trtllm_flash.ops.dispatch import fast_kernels_on_cpu

ATOL = 1e-5
YAML = Path(__file__).resolve().parents[2] / "examples" / "auto_deploy" / "nemotron_flash.yaml"
LIMITS = dict(max_batch_size=4, max_seq_len=48, page_size=8)


@pytest.fixture(scope="module")
def reference():
    return load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()


@pytest.fixture(scope="module")
def built():
    args = load_llm_args(
        [YAML], model="tiny", dtype="float32", device="cpu", max_batch_size=LIMITS["max_batch_size"],
        max_seq_len=LIMITS["max_seq_len"], kv_cache_config={"tokens_per_block": LIMITS["page_size"]},
    )
    model = build_model(args.for_build(), progress=None)
    yaml_transforms = set(args.transforms)
    assert yaml_transforms and all(r.enabled and not r.info.skipped for r in model.reports if r.name in yaml_transforms)
    return model


def prompt(n, seed):
    return torch.randint(3, 1000, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def assert_close(actual, expected):
    diff = (actual - expected).abs().max().item()
    assert diff <= ATOL, f"max abs logits diff {diff:.3g} > {ATOL}"


def fast_step(driver, work):
    with fast_kernels_on_cpu():
        return driver.step(work)


def test_fast_path_is_the_one_taken(built):
    """The switch changes the computation (the kernels round differently from the references)."""
    tokens = prompt(9, 0)
    runs = []
    for fast in (False, True):
        driver = Driver(built, **LIMITS)
        seq = driver.add(tokens)
        runs.append(fast_step(driver, [(seq, 9)])[0] if fast else driver.step([(seq, 9)])[0])
    assert not torch.equal(*runs)
    assert_close(*runs)


def test_prefill_then_greedy_decodes_past_the_window(built, reference):
    window = reference.config.sliding_window
    driver = Driver(built, **LIMITS)
    seq = driver.add(prompt(window - 3, 1))
    logits = fast_step(driver, [(seq, len(seq.tokens))])[0]
    assert_close(logits, reference_logits(reference, seq.tokens))
    while len(seq.tokens) < window + 9:
        expected = reference_logits(reference, seq.tokens)[-1]
        assert int(logits[-1].argmax()) == int(expected.argmax())
        seq.tokens.append(int(expected.argmax()))
        logits = fast_step(driver, [(seq, 1)])[0]
        assert_close(logits[-1], reference_logits(reference, seq.tokens)[-1])


def test_chunked_prefill_in_mixed_batches(built, reference):
    """A long prompt in chunks of 8 beside a sequence decoding, a third one joining mid-way; every step's
    logits of every item, prefill chunks first then decodes (each in its own slot and pages)."""
    driver = Driver(built, **LIMITS)
    arrivals = {0: [prompt(5, 2), prompt(21, 3)], 2: [prompt(3, 4)]}
    live, chunk = [], 8
    for step in range(5):
        live += [driver.add(tokens) for tokens in arrivals.get(step, [])]
        prefills = [(s, min(chunk, len(s.tokens) - s.cached)) for s in live if s.cached < len(s.tokens)]
        decodes = [(s, 1) for s in live if s.cached == len(s.tokens)]
        for s, _ in decodes:
            s.tokens.append(int(reference_logits(reference, s.tokens)[-1].argmax()))
        work = prefills + decodes
        for (s, n), logits in zip(work, fast_step(driver, work)):
            assert_close(logits, reference_logits(reference, s.tokens[: s.cached])[-n:])
    assert [s.cached for s in live] == [9, 23, 5]  # 5 + 4 decodes; chunks 8 + 8 + 5 + 2 decodes; 3 + 2 decodes
