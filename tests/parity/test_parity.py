"""CI parity (CPU, tiny preset, fp32): the built model (the ops' reference paths) against the eager
reference. Logits max abs diff <= ``ATOL`` and greedy tokens identical.

Measured max abs logits difference over these tests: 3.3e-6 (logits of magnitude ~1); ``ATOL`` = 1e-5.
The fast (Triton / fla) paths are held to the same bound in test_parity_fast.py."""
from types import SimpleNamespace

import pytest
import torch

from driver import Driver, reference_logits

ATOL = 1e-5
from trtllm_flash.build import build_model  # noqa: E402
from trtllm_flash.loading import load_model  # noqa: E402


def args(model="tiny", **overrides):
    values = dict(
        model=model, dtype="float32", device="cpu", max_batch_size=8, max_seq_len=256, seed=0,
        compile_backend="torch-simple", transforms={"gather_logits_before_lm_head": {"enabled": True}},
    )
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.fixture(scope="module")
def reference():
    return load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()


@pytest.fixture(scope="module")
def built():
    return build_model(args(), progress=None)


def prompt(n, seed):
    vocab = 1000
    return torch.randint(3, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def assert_close(actual, expected):
    diff = (actual - expected).abs().max().item()
    assert diff <= ATOL, f"max abs diff {diff:.3g} > {ATOL}"


def greedy(driver, reference, tokens, steps):
    """Prefill ``tokens`` then ``steps`` greedy decodes, checking every step's logits and token."""
    seq = driver.add(tokens)
    logits = driver.step([(seq, len(tokens))])[0]
    assert_close(logits, reference_logits(reference, seq.tokens))
    for _ in range(steps):
        nxt = int(logits[-1].argmax())
        expected = reference_logits(reference, seq.tokens + [nxt])[-1]
        assert nxt == int(reference_logits(reference, seq.tokens)[-1].argmax())
        seq.tokens.append(nxt)
        logits = driver.step([(seq, 1)])[0]
        assert_close(logits[-1], expected)
    return seq


def test_a_prefill_only(built, reference):
    driver = Driver(built)
    seq = driver.add(prompt(23, 0))
    assert_close(driver.step([(seq, 23)])[0], reference_logits(reference, seq.tokens))


def test_b_prefill_then_32_greedy_decodes(built, reference):
    greedy(Driver(built), reference, prompt(11, 1), 32)


def test_c_chunked_prefill_with_small_max_num_tokens(built, reference):
    driver = Driver(built)
    tokens = prompt(45, 2)
    seq = driver.add(tokens)
    max_num_tokens = 16
    pieces = []
    while seq.cached < len(tokens):
        pieces.append(driver.step([(seq, min(max_num_tokens, len(tokens) - seq.cached))])[0])
    assert len(pieces) == 3
    assert_close(torch.cat(pieces), reference_logits(reference, tokens))


def test_d_six_sequences_arriving_at_different_steps(built, reference):
    """Mixed batches: new prompts (some chunked) join sequences that are decoding."""
    driver = Driver(built)
    arrivals = {0: [prompt(9, 10), prompt(5, 11)], 2: [prompt(14, 12)], 3: [prompt(3, 13), prompt(20, 14)], 5: [prompt(7, 15)]}
    live, chunk = [], 8
    for step in range(12):
        for tokens in arrivals.get(step, []):
            live.append(driver.add(tokens))
        prefills = [(s, min(chunk, len(s.tokens) - s.cached)) for s in live if s.cached < len(s.tokens)]
        decodes = [(s, 1) for s in live if s.cached == len(s.tokens)]
        for s, _ in decodes:
            s.tokens.append(int(reference_logits(reference, s.tokens)[-1].argmax()))
        work = prefills + decodes
        for (s, n), logits in zip(work, driver.step(work)):
            assert_close(logits, reference_logits(reference, s.tokens[: s.cached])[-n:])
    assert len(live) == 6 and all(s.cached >= 11 for s in live)  # the 3-token prompt of step 3 has 8 decodes by step 11


def test_e_generation_past_the_sliding_window(reference):
    config = reference.config
    window = max(config.layer_window(i) for i, kind in enumerate(config.layer_types) if kind == "a")
    assert window > 0, "the tiny preset must have a sliding-window layer"
    built = build_model(args(max_seq_len=4 * window), progress=None)
    greedy(Driver(built, max_seq_len=4 * window), reference, prompt(window - 3, 3), window + 8)


def test_f_checkpoint_directory_round_trip(reference, tmp_path):
    """Saved in the published layout (memory tokens stored apart) and built from the directory; the prompt
    starts with the memory tokens, as the tokenizer's prompts do."""
    reference.save_pretrained(tmp_path)
    built = build_model(args(model=str(tmp_path)), progress=None)
    driver = Driver(built)
    config = reference.config
    memory = list(range(config.vocab_size, config.vocab_size + config.num_memory_tokens))
    assert memory
    seq = driver.add(memory + prompt(17, 4))
    assert_close(driver.step([(seq, len(seq.tokens))])[0], reference_logits(reference, seq.tokens))


@pytest.mark.parametrize("gather_in_graph", [True, False], ids=["gather-in-graph", "gather-after"])
def test_no_gather_idx_means_every_token(gather_in_graph):
    model = build_model(args(transforms={"gather_logits_before_lm_head": {"enabled": gather_in_graph}}), progress=None)
    runs = []
    for explicit in (True, False):
        driver = Driver(model, explicit_gather=explicit)
        seq = driver.add(prompt(9, seed=5))
        logits = [driver.step([(seq, 9)])[0]]
        seq.tokens.append(int(logits[0][-1].argmax()))
        logits.append(driver.step([(seq, 1)])[0])
        runs.append(logits)
    for with_gather, without in zip(*runs):
        assert torch.equal(with_gather, without)
