"""Cached op ``cached_delta_rule`` (CPU path): cache equivalence, mixed batches, slots and validation."""
import pytest
import torch
from delta_rule_cases import flattened_batch, random_inputs, run_cached, split_tokens, token_range

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)
from trtllm_flash.ops.delta_rule import delta_rule_reference

H, DK, DV, SCALE = 3, 12, 10, 12**-0.5
NUM_SLOTS = 9


def empty_pool(dtype=torch.float32):
    return torch.zeros(NUM_SLOTS, H, DK, DV, dtype=dtype)


def sequence(length, seed, dtype=torch.float32):
    return random_inputs(1, length, H, DK, DV, dtype=dtype, seed=seed)


def reference(seq, start=0, end=None):
    """Output ``[len, h, dv]`` of tokens start..end of a sequence run alone from zero, and the state after ``end``."""
    o, state = delta_rule_reference(*(t.float() for t in token_range(seq, 0, end or seq[0].shape[1])), SCALE)
    return o[0, start:], state[0]


def test_single_prefill_matches_reference():
    seq = sequence(37, seed=0)
    pool = empty_pool()
    inputs, meta = flattened_batch([seq], input_pos=[0], slots=[4])
    o = run_cached(inputs, meta, pool, SCALE)
    o_ref, state_ref = reference(seq)
    torch.testing.assert_close(o[0], o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[4], state_ref, atol=1e-5, rtol=1e-5)
    assert pool[[i for i in range(NUM_SLOTS) if i != 4]].abs().sum() == 0


def test_prefill_then_decodes_equals_one_prefill():
    n, steps = 11, 4
    seq = sequence(n + steps, seed=1)
    pool = empty_pool()
    outputs = [run_cached(*flattened_batch([token_range(seq, 0, n)], [0], [2]), pool, SCALE)[0]]
    for t in range(n, n + steps):
        inputs, meta = flattened_batch([token_range(seq, t, t + 1)], [t], [2], decode_layout=True)
        assert meta.num_decode == 1 and inputs[0].shape[:2] == (1, 1)
        outputs.append(run_cached(inputs, meta, pool, SCALE)[:, 0])
    o_ref, state_ref = reference(seq)
    torch.testing.assert_close(torch.cat(outputs), o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[2], state_ref, atol=1e-5, rtol=1e-5)


def test_chunked_prefill_equals_one_prefill():
    seq = sequence(29, seed=2)
    pool = empty_pool()
    bounds = [0, 5, 6, 17, 29]
    outputs = []
    for start, end in zip(bounds, bounds[1:]):
        outputs.append(run_cached(*flattened_batch([token_range(seq, start, end)], [start], [7]), pool, SCALE)[0])
    o_ref, state_ref = reference(seq)
    torch.testing.assert_close(torch.cat(outputs), o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[7], state_ref, atol=1e-5, rtol=1e-5)


def prime(pool, seq, length, slot):
    """Put the state of the first ``length`` tokens of ``seq`` in ``slot``."""
    pool[slot] = reference(seq, end=length)[1]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_mixed_batch_equals_each_sequence_alone(dtype, tol):
    """Fresh prefills of different lengths, a continuing prefill chunk, a one-token fresh prefill and two
    decodes, with permuted slots in a pool bigger than the batch; untouched slots stay untouched."""
    pool = empty_pool()
    pool[8] = torch.randn(H, DK, DV)  # a stale state in a slot the batch does not use
    fresh_a, continued, fresh_one = sequence(13, 10, dtype), sequence(4 + 6, 11, dtype), sequence(1, 12, dtype)
    decode_a, decode_b = sequence(7 + 1, 13, dtype), sequence(2 + 1, 14, dtype)
    prime(pool, continued, 4, slot=1)
    prime(pool, decode_a, 7, slot=6)
    prime(pool, decode_b, 2, slot=0)
    pool[5] = torch.randn(H, DK, DV)  # a fresh prefill's slot holding a finished sequence's state
    stale = pool[8].clone()

    chunks = [fresh_a, token_range(continued, 4, 10), fresh_one, token_range(decode_a, 7, 8), token_range(decode_b, 2, 3)]
    slots = [5, 1, 3, 6, 0]
    inputs, meta = flattened_batch(chunks, input_pos=[0, 4, 0, 7, 2], slots=slots)
    assert meta.batch_info_host.tolist() == [3, 20, 2]
    o = run_cached(inputs, meta, pool, SCALE)
    assert o.dtype == dtype

    starts = [0, 4, 0, 7, 2]
    for seq, start, slot, o_seq in zip([fresh_a, continued, fresh_one, decode_a, decode_b], starts, slots, split_tokens(o, [13, 6, 1, 1, 1])):
        o_ref, state_ref = reference(seq, start=start)
        torch.testing.assert_close(o_seq.float(), o_ref, atol=tol, rtol=tol)
        torch.testing.assert_close(pool[slot], state_ref, atol=tol, rtol=tol)
    torch.testing.assert_close(pool[8], stale, atol=0, rtol=0)
    assert pool[[2, 4, 7]].abs().sum() == 0


def test_decode_only_batch_layout():
    """``[B, 1, ...]`` decode batch, slots in reverse order."""
    seqs = [sequence(5 + i, seed=20 + i) for i in range(4)]
    pool = empty_pool()
    slots = [7, 5, 2, 0]
    for seq, slot in zip(seqs, slots):
        prime(pool, seq, seq[0].shape[1] - 1, slot)
    chunks = [token_range(s, s[0].shape[1] - 1, s[0].shape[1]) for s in seqs]
    inputs, meta = flattened_batch(chunks, [s[0].shape[1] - 1 for s in seqs], slots, decode_layout=True)
    o = run_cached(inputs, meta, pool, SCALE)
    assert o.shape == (4, 1, H, DV)
    for i, (seq, slot) in enumerate(zip(seqs, slots)):
        o_ref, state_ref = reference(seq, start=seq[0].shape[1] - 1)
        torch.testing.assert_close(o[i], o_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pool[slot], state_ref, atol=1e-5, rtol=1e-5)


def test_slot_reuse_leaks_nothing():
    first, second = sequence(9, seed=30), sequence(6, seed=31)
    pool = empty_pool()
    run_cached(*flattened_batch([first], [0], [3]), pool, SCALE)
    assert pool[3].abs().sum() > 0
    o = run_cached(*flattened_batch([second], [0], [3]), pool, SCALE)
    o_ref, state_ref = reference(second)
    torch.testing.assert_close(o[0], o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[3], state_ref, atol=1e-5, rtol=1e-5)


def test_padded_rows_on_the_sentinel_slot_touch_no_live_slot():
    """CUDA-graph padding: decode rows with zero inputs on the sentinel slot (the last) give finite output."""
    live = sequence(4, seed=40)
    pool = empty_pool()
    prime(pool, live, 3, slot=2)
    pad = tuple(torch.zeros_like(t[:, :1]) for t in live)
    sentinel = NUM_SLOTS - 1
    inputs, meta = flattened_batch([token_range(live, 3, 4), pad, pad], [3, 1, 1], [2, sentinel, sentinel], decode_layout=True)
    before = pool.clone()
    o = run_cached(inputs, meta, pool, SCALE)
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o[0], reference(live, start=3)[0], atol=1e-5, rtol=1e-5)
    untouched = [i for i in range(NUM_SLOTS) if i not in (2, sentinel)]
    torch.testing.assert_close(pool[untouched], before[untouched], atol=0, rtol=0)


def test_cached_op_fake_and_schema():
    inputs, meta = flattened_batch([sequence(3, 50), token_range(sequence(2, 51), 1, 2)], [0, 1], [4, 1])
    args = inputs + (meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states, empty_pool(), SCALE)
    torch.library.opcheck(torch.ops.trtllm_flash.cached_delta_rule.default, args)


def bad_call(**overrides):
    inputs, meta = flattened_batch([sequence(3, 60), token_range(sequence(2, 61), 1, 2)], [0, 1], [4, 1])
    args = dict(zip(["q", "k", "v", "beta"], inputs), **meta.as_dict(), delta_state=empty_pool(), scale=SCALE)
    args.update({name: f(args) for name, f in overrides.items()})
    del args["input_pos"], args["page_table"]
    torch.ops.trtllm_flash.cached_delta_rule(**args)


@pytest.mark.parametrize(
    "overrides, argument",
    [
        ({"delta_state": lambda a: a["delta_state"].bfloat16()}, "delta_state"),
        ({"delta_state": lambda a: a["delta_state"][:, :, :-1]}, "delta_state"),
        ({"slot_idx": lambda a: torch.tensor([4, NUM_SLOTS])}, "slot_idx"),
        ({"batch_info_host": lambda a: torch.tensor([1, 3, 2], dtype=torch.int32)}, "batch_info_host"),
        ({"cu_seqlen": lambda a: torch.tensor([0, 2, 4], dtype=torch.int32)}, "cu_seqlen"),
        ({"use_initial_states": lambda a: a["use_initial_states"].int()}, "use_initial_states"),
        ({"use_initial_states": lambda a: a["use_initial_states"][:1]}, "use_initial_states"),
        ({n: (lambda a, n=n: a[n].reshape(2, 2, *a[n].shape[2:])) for n in ("q", "k", "v", "beta")}, "flattened"),
        ({"q": lambda a: a["q"][..., :-1]}, "k must have q's shape"),
    ],
)
def test_cached_op_rejects_bad_input(overrides, argument):
    with pytest.raises(ValueError, match=argument):
        bad_call(**overrides)
