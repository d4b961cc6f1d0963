"""Cached causal conv (the validated torch path and the Triton kernels, both on the CPU) against the
reference: decode continuation, chunked prefill (chunks shorter than k-1), a mixed batch over permuted
slots, slot reuse, bad input."""
import pytest
import torch
from conv_cases import C, K, flattened_batch, random_weights, random_x, run_cached

import trtllm_flash.ops.causal_conv  # noqa: F401  (registers the ops)
from trtllm_flash.ops.causal_conv import causal_conv1d_reference
from trtllm_flash.ops.causal_conv.cached import cached_causal_conv1d_fast

IMPLS = {"torch": torch.ops.trtllm_flash.cached_causal_conv1d, "triton": cached_causal_conv1d_fast}
TOL = 1e-5


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


def test_prefill_then_decodes_equals_longer_prefill(impl):
    weights = random_weights(seed=2)
    seq = random_x(40, seed=2)
    pool = torch.zeros(5, C, K - 1)
    ys = [run_cached(impl, *flattened_batch([seq[:, :37]], [0], [3]), weights=weights, state=pool)]
    for t in range(37, 40):
        x, meta = flattened_batch([seq[:, t : t + 1]], [t], [3], decode_layout=True)
        ys.append(run_cached(impl, x, meta, weights, pool))
    y_ref, window = causal_conv1d_reference(seq, *weights, "silu")
    torch.testing.assert_close(torch.cat([y.reshape(-1, C) for y in ys]), y_ref[0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[3], window[0], atol=0, rtol=0)
    assert pool[[0, 1, 2, 4]].abs().sum() == 0


@pytest.mark.parametrize("bounds", [((0, 1), (1, 3), (3, 4), (4, 40)), ((0, 2), (2, 35), (35, 37))])
def test_chunked_prefill_equals_one_prefill(impl, bounds):
    """Chunks of 1 and 2 tokens (shorter than k-1 = 3: the window must shift) and long ones."""
    weights = random_weights(seed=3)
    end = bounds[-1][1]
    seq = random_x(end, seed=3)
    pool = torch.randn(3, C, K - 1)
    ys = []
    for start, stop in bounds:
        x, meta = flattened_batch([seq[:, start:stop]], [start], [1])
        ys.append(run_cached(impl, x, meta, weights, pool)[0])
    y_ref, window = causal_conv1d_reference(seq, *weights, "silu")
    torch.testing.assert_close(torch.cat(ys), y_ref[0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[1], window[0], atol=0, rtol=0)


def test_mixed_batch_equals_each_sequence_alone(impl):
    """Fresh 2-token prefill (stale slot), continuing prefills of 1 and 35 tokens, three decodes; pool of 9."""
    weights = random_weights(seed=4)
    lengths, cached = [2, 5 + 1, 3 + 35, 4, 3, 8], [0, 5, 3, 3, 2, 7]
    seqs = [random_x(n, seed=10 + i) for i, n in enumerate(lengths)]
    slots = [2, 6, 0, 1, 4, 8]
    pool = torch.zeros(9, C, K - 1)
    for seq, c, slot in zip(seqs, cached, slots):
        if c:
            pool[slot] = causal_conv1d_reference(seq[:, :c], *weights, "silu")[1][0]
    pool[2] = torch.randn(C, K - 1)  # stale window in the fresh prefill's slot
    x, meta = flattened_batch([seq[:, c:] for seq, c in zip(seqs, cached)], cached, slots)
    assert meta.num_prefill == 3 and meta.num_decode == 3
    y = run_cached(impl, x, meta, weights, pool)[0]
    for seq, c, slot, y_seq in zip(seqs, cached, slots, y.split([n - c for n, c in zip(lengths, cached)])):
        y_ref, window = causal_conv1d_reference(seq, *weights, "silu")
        torch.testing.assert_close(y_seq, y_ref[0, c:], atol=TOL, rtol=TOL)
        torch.testing.assert_close(pool[slot], window[0], atol=0, rtol=0)
    assert pool[[3, 5, 7]].abs().sum() == 0


def test_slot_reuse_leaks_no_state(impl):
    weights = random_weights(seed=5)
    pool = torch.zeros(2, C, K - 1)
    run_cached(impl, *flattened_batch([random_x(9, seed=5)], [0], [1]), weights=weights, state=pool)
    assert pool[1].abs().sum() > 0
    new = random_x(2, seed=6)
    y = run_cached(impl, *flattened_batch([new], [0], [1]), weights=weights, state=pool)
    y_ref, window = causal_conv1d_reference(new, *weights, "silu")
    torch.testing.assert_close(y, y_ref, atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[1], window[0], atol=0, rtol=0)


@pytest.mark.parametrize("activation, with_bias", [("none", False), ("silu", True)])
def test_fast_path_bf16_mixed_batch(activation, with_bias):
    weights = random_weights(dtype=torch.bfloat16, seed=7, with_bias=with_bias)
    seqs = [random_x(n, dtype=torch.bfloat16, seed=40 + i) for i, n in enumerate([33, 6])]
    pool = torch.zeros(4, C, K - 1, dtype=torch.bfloat16)
    pool[1] = causal_conv1d_reference(seqs[1][:, :5], *weights, activation)[1][0]
    x, meta = flattened_batch([seqs[0], seqs[1][:, 5:]], [0, 5], [3, 1])
    y = run_cached(cached_causal_conv1d_fast, x, meta, weights, pool, activation)[0]
    for seq, c, slot, y_seq in zip(seqs, [0, 5], [3, 1], y.split([33, 1])):
        y_ref, window = causal_conv1d_reference(seq, *weights, activation)
        torch.testing.assert_close(y_seq.float(), y_ref[0, c:].float(), atol=2e-2, rtol=2e-2)
        torch.testing.assert_close(pool[slot], window[0], atol=0, rtol=0)


@pytest.mark.parametrize(
    "mutate, name",
    [
        (lambda a: a.update(conv_state=torch.zeros(3, C, K)), "conv_state"),
        (lambda a: a.update(conv_state=torch.zeros(3, C, K - 1, dtype=torch.bfloat16)), "conv_state"),
        (lambda a: a.update(weight=torch.zeros(C, 1, 1), conv_state=torch.zeros(3, C, 0)), "weight"),
        (lambda a: a.update(slot_idx=torch.tensor([0, 3])), "slot_idx"),
        (lambda a: a.update(batch_info_host=torch.tensor([1, 3, 1], dtype=torch.int32)), "batch_info_host"),
        (lambda a: a.update(use_initial_states=torch.tensor([0, 1])), "use_initial_states"),
        (lambda a: a.update(activation="relu"), "activation"),
    ],
)
def test_bad_cached_input_raises(mutate, name):
    x, meta = flattened_batch([random_x(4), random_x(1)], [0, 3], [0, 1])
    weight, bias = random_weights()
    args = dict(
        x=x, weight=weight, bias=bias, batch_info_host=meta.batch_info_host, cu_seqlen=meta.cu_seqlen, slot_idx=meta.slot_idx,
        use_initial_states=meta.use_initial_states, conv_state=torch.zeros(3, C, K - 1), activation="silu",
    )
    mutate(args)
    with pytest.raises(ValueError, match=name):
        torch.ops.trtllm_flash.cached_causal_conv1d(**args)
