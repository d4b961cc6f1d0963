"""The delta-rule ops' prologue options (``qk_l2norm_eps``, ``beta_sigmoid``) against the unfused path:
``l2norm`` / ``sigmoid`` applied outside, then the op without options.

CPU ops (source, cached): the options run the same torch code first, so the results are bit-identical.
Decode kernel (interpreted): fp32 to 1e-6. bf16: the Triton 3.8 interpreter truncates fp32 -> bf16 casts
(the GPU rounds to nearest even, as torch does), so the kernel's q, k and beta may sit one bf16 ulp
(up to 2^-7 relative) below the unfused ops' values here; outputs are held to the existing bf16 decode
tolerance (1e-2) and the state update ``S_new - S_old`` to 2e-2 relative L2 error (≤ 1.2e-2 seen over 15
seeds). The GPU test at the 1B shape (test_delta_rule_gpu.py) checks the rounding the kernel really does.
"""
import pytest
import torch
from delta_rule_cases import L2NORM_EPS, flattened_batch, prologue, raw_inputs, run_cached, split_tokens, token_range

import trtllm_flash.ops.delta_rule  # noqa: F401  (registers the ops)
from trtllm_flash.ops.delta_rule.cached import cached_delta_rule_fast
from trtllm_flash.ops.delta_rule.decode_kernel import delta_rule_decode_

H, DK, DV, SCALE = 2, 12, 20, 0.3  # dk = 12 pads to a 16-wide block: the masked lanes must not enter the norm
OPTIONS = (L2NORM_EPS, True)


def rel_l2(actual, expected):
    return ((actual.float() - expected.float()).norm() / expected.float().norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_kernel_prologue_matches_the_unfused_path(dtype):
    """Permuted slots in a pool of 7, q and beta read through strided views (as the split GEMM output is)."""
    n = 3
    q, k, v, b = (t[0] for t in raw_inputs(1, n, H, DK, DV, dtype=dtype, seed=1))
    qb_wide = torch.zeros(n, H, DK + 1, dtype=dtype)
    qb_wide[..., :DK], qb_wide[..., DK] = q, b
    q_view, b_view = qb_wide[..., :DK], qb_wide[..., DK]
    before = torch.randn(7, H, DK, DV)
    pool, unfused_pool = before.clone(), before.clone()
    slots = torch.tensor([5, 0, 3])
    o, o_unfused = torch.full((2, n, H, DV), float("nan"), dtype=dtype)

    delta_rule_decode_(q_view, k, v, b_view, o, pool, slots, SCALE, *OPTIONS)
    q_n, k_n, _, beta = prologue((q, k, v, b))
    delta_rule_decode_(q_n, k_n, v, beta, o_unfused, unfused_pool, slots, SCALE)

    if dtype == torch.float32:
        torch.testing.assert_close(o, o_unfused, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(pool, unfused_pool, atol=1e-6, rtol=1e-6)
    else:
        torch.testing.assert_close(o.float(), o_unfused.float(), atol=1e-2, rtol=1e-2)
        assert rel_l2(pool - before, unfused_pool - before) < 2e-2
    torch.testing.assert_close(pool[[1, 2, 4, 6]], before[[1, 2, 4, 6]], atol=0, rtol=0)


@pytest.mark.parametrize("options", [(L2NORM_EPS, False), (None, True)])
def test_decode_kernel_each_option_alone(options):
    eps, sigmoid = options
    q, k, v, b = (t[0] for t in raw_inputs(1, 2, H, DK, DV, seed=2))
    q_n, k_n, _, beta = prologue((q, k, v, b))
    pool = torch.randn(4, H, DK, DV)
    unfused_pool = pool.clone()
    slots = torch.tensor([2, 1])
    o, o_unfused = torch.empty(2, 2, H, DV)
    delta_rule_decode_(q if eps else q_n, k if eps else k_n, v, b if sigmoid else beta, o, pool, slots, SCALE, *options)
    delta_rule_decode_(q_n, k_n, v, beta, o_unfused, unfused_pool, slots, SCALE)
    torch.testing.assert_close(o, o_unfused, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(pool, unfused_pool, atol=1e-6, rtol=1e-6)


def mixed_batch(dtype=torch.float32):
    """A fresh prefill, a continuing prefill chunk and two decodes of raw inputs; their slots in a pool of 8
    hold states primed by the unfused op. Returns ``(inputs, meta, pool, lengths)``."""
    fresh, continued, dec_a, dec_b = (raw_inputs(1, n, H, DK, DV, dtype=dtype, seed=10 + i) for i, n in enumerate([5, 7, 4, 3]))
    pool = torch.zeros(8, H, DK, DV)
    for seq, length, slot in ((continued, 3, 6), (dec_a, 3, 1), (dec_b, 2, 4)):
        run_cached(*flattened_batch([prologue(token_range(seq, 0, length))], [0], [slot]), pool, SCALE)
    chunks = [fresh, token_range(continued, 3, 7), token_range(dec_a, 3, 4), token_range(dec_b, 2, 3)]
    inputs, meta = flattened_batch(chunks, [0, 3, 3, 2], [2, 6, 1, 4])
    return inputs, meta, pool, [5, 4, 1, 1]


def assert_options_equal_unfused_on_cpu(inputs, meta, pool):
    """The CPU cached op with the options on raw inputs == without them on prologue'd inputs, bit for bit
    (outputs and the updated slot pool)."""
    unfused_pool = pool.clone()
    o = run_cached(inputs, meta, pool, SCALE, *OPTIONS)
    o_unfused = run_cached(prologue(inputs), meta, unfused_pool, SCALE)
    torch.testing.assert_close(o, o_unfused, atol=0, rtol=0)
    torch.testing.assert_close(pool, unfused_pool, atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cached_op_options_equal_the_unfused_op_on_cpu(dtype):
    inputs, meta, pool, _ = mixed_batch(dtype)
    assert_options_equal_unfused_on_cpu(inputs, meta, pool)


def test_cached_op_options_decode_only_layout():
    seqs = [raw_inputs(1, 1, H, DK, DV, seed=20 + i) for i in range(3)]
    inputs, meta = flattened_batch(seqs, [4, 2, 9], [0, 5, 3], decode_layout=True)
    assert_options_equal_unfused_on_cpu(inputs, meta, torch.randn(6, H, DK, DV))


def test_fast_cached_op_options_mixed_batch():
    """The CUDA path interpreted (fla's fused-recurrent prefill + the decode kernel), fp32, vs the CPU op unfused."""
    inputs, meta, pool, lengths = mixed_batch()
    unfused_pool = pool.clone()
    o = run_cached(inputs, meta, pool, SCALE, *OPTIONS, op=cached_delta_rule_fast)
    o_unfused = run_cached(prologue(inputs), meta, unfused_pool, SCALE)
    for o_seq, o_ref in zip(split_tokens(o, lengths), split_tokens(o_unfused, lengths)):
        torch.testing.assert_close(o_seq, o_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pool, unfused_pool, atol=1e-5, rtol=1e-5)


def test_source_op_options_equal_the_unfused_op():
    inputs = raw_inputs(2, 9, H, DK, DV, dtype=torch.bfloat16, seed=30)
    o = torch.ops.trtllm_flash.delta_rule(*inputs, SCALE, *OPTIONS)
    torch.testing.assert_close(o, torch.ops.trtllm_flash.delta_rule(*prologue(inputs), SCALE), atol=0, rtol=0)


def test_ops_fake_and_schema_with_options():
    inputs = raw_inputs(2, 5, H, DK, DV, seed=40)
    torch.library.opcheck(torch.ops.trtllm_flash.delta_rule.default, inputs + (SCALE, *OPTIONS))
    (q, k, v, b), meta, pool, _ = mixed_batch()
    metadata = (meta.batch_info_host, meta.cu_seqlen, meta.slot_idx, meta.use_initial_states)
    torch.library.opcheck(torch.ops.trtllm_flash.cached_delta_rule.default, (q, k, v, b, *metadata, pool, SCALE, *OPTIONS))


def test_negative_eps_is_rejected():
    inputs = raw_inputs(1, 3, H, DK, DV, seed=50)
    with pytest.raises(ValueError, match="qk_l2norm_eps"):
        torch.ops.trtllm_flash.delta_rule(*inputs, SCALE, -1e-6, True)
