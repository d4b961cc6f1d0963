"""Cached SSM (the validated torch path and the Triton fast path, both on the CPU) against the reference:
decode continuation, chunked prefill, a mixed batch over permuted slots, slot reuse, bad input."""
import pytest
import torch
from mamba_cases import DT_MAX, DT_MIN, G, H, N, P, flattened_batch, random_params, random_tokens, run_cached, split_tokens, token_range

import trtllm_flash.ops.mamba  # noqa: F401  (registers the ops)
from trtllm_flash.ops.mamba import ssm_reference, ssm_step
from trtllm_flash.ops.mamba.cached import cached_ssm_fast
from trtllm_flash.ops.mamba.decode_kernel import ssm_decode_

IMPLS = {"torch": torch.ops.trtllm_flash.cached_ssm, "triton": cached_ssm_fast}
TOL = 2e-4


def reference(tokens, params, initial=None):
    x, dt, B, C = tokens
    A, D, dt_bias = params
    return ssm_reference(x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX, initial)


@pytest.fixture(params=list(IMPLS))
def impl(request):
    return IMPLS[request.param]


def test_prefill_then_decodes_equals_longer_prefill(impl):
    """prefill(37) + 3 decodes (in [B, 1] layout) == prefill(40); slot 3 of a pool of 5."""
    params = random_params(seed=4)
    seq = random_tokens(1, 40, seed=4)
    pool = torch.zeros(5, H, P, N)
    (tokens, meta) = flattened_batch([token_range(seq, 0, 37)], [0], [3])
    ys = [run_cached(impl, tokens, params, meta, pool)]
    for t in range(37, 40):
        tokens, meta = flattened_batch([token_range(seq, t, t + 1)], [t], [3], decode_layout=True)
        ys.append(run_cached(impl, tokens, params, meta, pool))
    y = torch.cat([y.reshape(-1, H, P) for y in ys])
    y_ref, s_ref = reference(seq, params)
    torch.testing.assert_close(y, y_ref[0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[3], s_ref[0], atol=TOL, rtol=TOL)
    assert pool[[0, 1, 2, 4]].abs().sum() == 0


def test_chunked_prefill_equals_one_prefill(impl):
    """Chunks of 9, 70 and 1 tokens (starts not aligned to chunk_size 8 nor to the kernel's 64)."""
    params = random_params(seed=5)
    seq = random_tokens(1, 80, seed=5)
    pool = torch.randn(3, H, P, N)
    ys = []
    for start, end in ((0, 9), (9, 79), (79, 80)):
        tokens, meta = flattened_batch([token_range(seq, start, end)], [start], [1])
        ys.append(run_cached(impl, tokens, params, meta, pool)[0])
    y_ref, s_ref = reference(seq, params)
    torch.testing.assert_close(torch.cat(ys), y_ref[0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[1], s_ref[0], atol=TOL, rtol=TOL)


def test_mixed_batch_equals_each_sequence_alone(impl):
    """Fresh prefill (stale slot), two continuing prefills, three decodes; permuted slots in a pool of 9."""
    params = random_params(seed=6)
    lengths, cached = [5, 3 + 66, 2 + 4, 4, 3, 8], [0, 3, 2, 3, 2, 7]
    seqs = [random_tokens(1, n, seed=20 + i) for i, n in enumerate(lengths)]
    slots = [2, 6, 0, 1, 4, 8]
    pool = torch.zeros(9, H, P, N)
    for seq, c, slot in zip(seqs, cached, slots):
        if c:
            pool[slot] = reference(token_range(seq, 0, c), params)[1][0]
    pool[2] = torch.randn(H, P, N)  # stale state in the fresh prefill's slot
    chunks = [token_range(seq, c, n) for seq, c, n in zip(seqs, cached, lengths)]
    tokens, meta = flattened_batch(chunks, cached, slots)
    assert meta.num_prefill == 3 and meta.num_decode == 3
    y = run_cached(impl, tokens, params, meta, pool)
    for seq, c, slot, y_seq in zip(seqs, cached, slots, split_tokens(y, [n - c for n, c in zip(lengths, cached)])):
        y_ref, s_ref = reference(seq, params)
        torch.testing.assert_close(y_seq, y_ref[0, c:], atol=TOL, rtol=TOL)
        torch.testing.assert_close(pool[slot], s_ref[0], atol=TOL, rtol=TOL)
    assert pool[[3, 5, 7]].abs().sum() == 0


def test_slot_reuse_leaks_no_state(impl):
    """A new sequence in a slot that held another one's state starts from zeros."""
    params = random_params(seed=7)
    old, new = random_tokens(1, 12, seed=7), random_tokens(1, 10, seed=8)
    pool = torch.zeros(2, H, P, N)
    tokens, meta = flattened_batch([old], [0], [1])
    run_cached(impl, tokens, params, meta, pool)
    assert pool[1].abs().sum() > 0
    tokens, meta = flattened_batch([new], [0], [1])
    y = run_cached(impl, tokens, params, meta, pool)
    y_ref, s_ref = reference(new, params)
    torch.testing.assert_close(y[0], y_ref[0], atol=TOL, rtol=TOL)
    torch.testing.assert_close(pool[1], s_ref[0], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_decode_kernel_matches_step(dtype, tol):
    """Permuted slots in a pool of 7, x through a strided view, other slots untouched; p = 20 spans blocks."""
    n_seq, p = 3, 20
    x, dt, B, C = (t[:, 0] for t in random_tokens(n_seq, 1, p=p, dtype=dtype, seed=9))
    x_wide = torch.zeros(n_seq, H, p + 4, dtype=dtype)
    x_wide[..., 1 : 1 + p] = x
    A, D, dt_bias = random_params(seed=9)
    pool = torch.randn(7, H, p, N)
    before = pool.clone()
    slots = torch.tensor([5, 0, 3])
    y = torch.full((n_seq, H, p), float("nan"), dtype=dtype)
    ssm_decode_(x_wide[..., 1 : 1 + p], dt, A, B, C, D, dt_bias, y, pool, slots, DT_MIN, DT_MAX)
    y_ref, s_ref = ssm_step(before[slots], x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX)
    torch.testing.assert_close(y.float(), y_ref, atol=tol, rtol=tol)
    torch.testing.assert_close(pool[slots], s_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool[[1, 2, 4, 6]], before[[1, 2, 4, 6]], atol=0, rtol=0)


def test_fast_path_bf16_mixed_batch():
    """bf16 inputs through the Triton prefill + decode kernels; the state stays fp32."""
    params = random_params(seed=10)
    seqs = [random_tokens(1, n, dtype=torch.bfloat16, seed=30 + i) for i, n in enumerate([33, 6])]
    pool = torch.zeros(4, H, P, N)
    pool[1] = reference(token_range(seqs[1], 0, 5), params)[1][0]
    tokens, meta = flattened_batch([seqs[0], token_range(seqs[1], 5, 6)], [0, 5], [3, 1])
    y = run_cached(cached_ssm_fast, tokens, params, meta, pool)
    for seq, c, slot, y_seq in zip(seqs, [0, 5], [3, 1], split_tokens(y, [33, 1])):
        y_ref, s_ref = reference(seq, params)
        torch.testing.assert_close(y_seq.float(), y_ref[0, c:].float(), atol=3e-2, rtol=3e-2)
        torch.testing.assert_close(pool[slot], s_ref[0], atol=1e-2, rtol=1e-2)


def _cached_args():
    tokens, meta = flattened_batch([random_tokens(1, 4), random_tokens(1, 1)], [0, 3], [0, 1])
    x, dt, B, C = tokens
    A, D, dt_bias = random_params()
    return dict(
        x=x, dt=dt, A=A, B=B, C=C, D=D, dt_bias=dt_bias, batch_info_host=meta.batch_info_host, cu_seqlen=meta.cu_seqlen,
        slot_idx=meta.slot_idx, use_initial_states=meta.use_initial_states, ssm_state=torch.zeros(3, H, P, N),
        dt_min=DT_MIN, dt_max=DT_MAX, chunk_size=8,
    )


@pytest.mark.parametrize(
    "mutate, name",
    [
        (lambda a: a.update(ssm_state=torch.zeros(3, H, P, N + 1)), "ssm_state"),
        (lambda a: a.update(ssm_state=torch.zeros(3, H, P, N, dtype=torch.bfloat16)), "ssm_state"),
        (lambda a: a.update(slot_idx=torch.tensor([0, 3])), "slot_idx"),
        (lambda a: a.update(batch_info_host=torch.tensor([1, 3, 1], dtype=torch.int32)), "batch_info_host"),
        (lambda a: a.update(cu_seqlen=torch.tensor([0, 2, 5], dtype=torch.int32)), "cu_seqlen"),
        (lambda a: a.update(use_initial_states=torch.tensor([0, 1])), "use_initial_states"),
        (lambda a: a.update(x=a["x"].long()), "x"),
    ],
)
def test_bad_cached_input_raises(mutate, name):
    args = _cached_args()
    mutate(args)
    with pytest.raises(ValueError, match=name):
        torch.ops.trtllm_flash.cached_ssm(**args)
