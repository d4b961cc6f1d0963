"""norm + linear ops: the fused Triton GEMV (interpreted) against the exact product of the unfused norm and
projection, the CPU ops against the references, which rows take the fused GEMV, fake shapes, bad input;
on the GPU the compiled kernel at the 1B / 3B shapes it replaces."""
import pytest
import torch
import torch.nn.functional as F
import triton

import trtllm_flash.ops.norm_linear  # noqa: F401  (registers the ops)
from trtllm_flash.ops.norm_linear import kernels, reference
from trtllm_flash.ops.norm_linear.ops import uses_fused_gemv

SMALL = triton.Config({"BLOCK_N": 4, "BLOCK_K": 32}, num_warps=1)
EPS = 1e-6
# the kernel keeps the normalised row in fp32 and rounds y once; the unfused graph also rounds the
# normalised row to the input dtype, so in bf16 the two sit within a few bf16 ulps of the exact value
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=2**-6)}


def randn(*shape, dtype=torch.float32, seed=0, device="cpu"):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype=dtype, device=device)


def exact(x, norm_weight, weight, group_size, gate=None, residual=None):
    """float64, no intermediate rounding except the residual sum (rounded to x's dtype, as the ops do)."""
    total = (x.double() + residual.double()).to(x.dtype) if residual is not None else x
    a = total.double()
    if gate is not None:
        a = a * F.silu(gate.double())
    groups = a.unflatten(-1, (-1, group_size))
    normed = (groups * torch.rsqrt(groups.pow(2).mean(-1, keepdim=True) + EPS)).flatten(-2)
    scale = norm_weight.double().repeat(a.shape[-1] // norm_weight.numel())
    return F.linear(normed * scale, weight.double()), total


CASES = {  # name: (K, group_size, gated, with residual)
    "whole_row": (70, 70, False, False),  # ragged K tile
    "whole_row_residual": (64, 64, False, True),
    "gated_whole_row": (64, 64, True, False),
    "per_head": (48, 16, False, False),  # groups of 16, a half-masked last tile
    "gated_groups": (64, 16, True, False),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("case", CASES)
def test_fused_kernel_matches_the_exact_unfused_product(case, dtype):
    k, group, gated, with_residual = CASES[case]
    n = 10  # a ragged row block
    x, w = randn(1, 1, k, dtype=dtype), randn(n, k, dtype=dtype, seed=1) * 0.2
    norm_weight = 1 + 0.1 * randn(k if gated else group, dtype=dtype, seed=2)
    gate = randn(1, 1, k, dtype=dtype, seed=3) if gated else None
    residual = randn(1, 1, k, dtype=dtype, seed=4) if with_residual else None
    y, total = kernels.norm_gemv_triton(x, norm_weight, w, EPS, group, gate=gate, residual=residual, config=SMALL)
    want_y, want_total = exact(x, norm_weight, w, group, gate, residual)
    assert y.shape == (1, 1, n) and y.dtype == dtype
    torch.testing.assert_close(y.double(), want_y, **TOL[dtype])
    if with_residual:  # the interpreter casts to bf16 by truncation: one ulp off there (exact on the GPU)
        torch.testing.assert_close(total, want_total, **({} if dtype == torch.bfloat16 else dict(rtol=0, atol=0)))
    else:
        assert total is None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0], ids=["zero-row", "half-sqrt-eps", "twice-sqrt-eps"])
def test_fused_kernel_where_eps_matters(case, scale):
    """Rows of root-mean-square ``scale * sqrt(EPS)`` (eps changes the norm by 10 % .. 2x) and an all-zero
    row (y must be 0, not NaN), fp32, against the float64 product."""
    k, group, gated, with_residual = CASES[case]
    x, w = randn(1, 1, k), randn(10, k, seed=1) * 0.2
    norm_weight = 1 + 0.1 * randn(k if gated else group, seed=2)
    gate = randn(1, 1, k, seed=3) if gated else None
    active = x * F.silu(gate) if gated else x  # what the norm sees
    x = x * (scale * EPS**0.5 / active.unflatten(-1, (-1, group)).pow(2).mean(-1).sqrt().repeat_interleave(group, -1))
    residual = torch.zeros_like(x) if with_residual else None
    y, _ = kernels.norm_gemv_triton(x, norm_weight, w, EPS, group, gate=gate, residual=residual, config=SMALL)
    want_y, _ = exact(x, norm_weight, w, group, gate, residual)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), want_y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_references_are_the_unfused_ops(dtype):
    x, w = randn(2, 3, 32, dtype=dtype), randn(5, 32, dtype=dtype, seed=1)
    norm_w, gate, res = randn(8, dtype=dtype, seed=2), randn(2, 3, 32, dtype=dtype, seed=3), randn(2, 3, 32, dtype=dtype, seed=4)
    per_head = torch.ops.trtllm_flash.rms_norm(x.unflatten(-1, (4, 8)), norm_w, EPS).flatten(-2)
    torch.testing.assert_close(torch.ops.trtllm_flash.rms_norm_linear(x, norm_w, w, EPS, 8), F.linear(per_head, w), rtol=0, atol=0)
    full_w = randn(32, dtype=dtype, seed=5)
    gated = torch.ops.trtllm_flash.rms_norm_gated(x, full_w, gate, EPS, 16)
    torch.testing.assert_close(torch.ops.trtllm_flash.rms_norm_linear(x, full_w, w, EPS, 16, gate), F.linear(gated, w), rtol=0, atol=0)
    normed, total = torch.ops.trtllm_flash.add_rms_norm(x, res, full_w, EPS)
    y, y_total = torch.ops.trtllm_flash.add_rms_norm_linear(x, res, full_w, w, EPS)
    torch.testing.assert_close(y, F.linear(normed, w), rtol=0, atol=0)
    torch.testing.assert_close(y_total, total, rtol=0, atol=0)


def test_only_one_half_precision_row_with_a_tileable_group_takes_the_fused_gemv():
    w = randn(8, 2048, dtype=torch.bfloat16)
    row = randn(1, 1, 2048, dtype=torch.bfloat16)
    assert uses_fused_gemv(row, w, 2048) and uses_fused_gemv(row, w, 128)  # the whole row; per head
    assert not uses_fused_gemv(randn(1, 2, 2048, dtype=torch.bfloat16), w, 2048)  # two tokens: norm kernel + cuBLAS
    assert not uses_fused_gemv(randn(1, 2048), randn(8, 2048), 2048)  # fp32
    assert not uses_fused_gemv(row, w, 1024)  # groups wider than the smallest K tile
    assert not uses_fused_gemv(row, w, 96)  # not a power of two
    assert not uses_fused_gemv(row, randn(2048, 8, dtype=torch.bfloat16).t(), 2048)  # strided weight


def test_fake_shapes_and_bad_input():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        y = torch.ops.trtllm_flash.rms_norm_linear(torch.empty(2, 7, 24), torch.empty(8), torch.empty(5, 24), EPS, 8)
        z, total = torch.ops.trtllm_flash.add_rms_norm_linear(torch.empty(7, 24), torch.empty(7, 24), torch.empty(24), torch.empty(5, 24), EPS)
    assert y.shape == (2, 7, 5) and z.shape == (7, 5) and total.shape == (7, 24)
    x, w = randn(2, 24), randn(5, 24)
    with pytest.raises(ValueError, match="group_size"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(5), w, EPS, 5)
    with pytest.raises(ValueError, match="norm_weight must be \\[8\\]"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(24), w, EPS, 8)
    with pytest.raises(ValueError, match="norm_weight must be \\[24\\]"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(8), w, EPS, 8, randn(2, 24))
    with pytest.raises(ValueError, match="gate must match"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(24), w, EPS, 8, randn(3, 24))
    with pytest.raises(ValueError, match="share a dtype"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(8), w.bfloat16(), EPS, 8)
    with pytest.raises(ValueError, match="K"):
        torch.ops.trtllm_flash.rms_norm_linear(x, randn(8), randn(5, 16), EPS, 8)
    with pytest.raises(ValueError, match="residual must match"):
        torch.ops.trtllm_flash.add_rms_norm_linear(x, randn(3, 24), randn(24), w, EPS)


GPU_CASES = {  # the projections a norm feeds in the 1B (K 2048) and 3B (K 3072): (N, K, group_size, gated, residual)
    "1b_ffn_gate_up": (12288, 2048, 2048, False, True),
    "1b_deltanet_o_proj": (2048, 2048, 128, False, False),
    "1b_mamba_out_proj": (2048, 4096, 4096, True, False),
    "3b_mamba_in_proj": (12640, 3072, 3072, False, True),
    "3b_deltanet_o_proj": (3072, 3072, 128, False, False),
}


@pytest.mark.gpu
@pytest.mark.parametrize("case", GPU_CASES)
def test_fused_gemv_on_the_gpu_at_model_shapes(case):
    n, k, group, gated, with_residual = GPU_CASES[case]
    bf16 = dict(dtype=torch.bfloat16, device="cuda")
    x, w = randn(1, 1, k, **bf16), randn(n, k, seed=1, **bf16) * 0.02
    norm_weight = 1 + 0.1 * randn(k if gated else group, seed=2, **bf16)
    gate = randn(1, 1, k, seed=3, **bf16) if gated else None
    residual = randn(1, 1, k, seed=4, **bf16) if with_residual else None
    assert uses_fused_gemv(x, w, group)
    if with_residual:
        y, total = torch.ops.trtllm_flash.add_rms_norm_linear(x, residual, norm_weight, w, EPS)
    else:
        y, total = torch.ops.trtllm_flash.rms_norm_linear(x, norm_weight, w, EPS, group, gate), None
    want_y, want_total = exact(x, norm_weight, w, group, gate, residual)
    # one bf16 rounding of an fp32 sum: within 2^-8 relative of the exact product, plus summation-order noise
    torch.testing.assert_close(y.double(), want_y, rtol=2**-7, atol=2e-3)
    if with_residual:
        torch.testing.assert_close(total, want_total, rtol=0, atol=0)
    # three rows take the unfused path: the norm kernel, then cuBLAS, exactly the unfused graph
    rows = randn(1, 3, k, seed=5, **bf16)
    if with_residual:
        res3 = randn(1, 3, k, seed=6, **bf16)
        normed, total3 = torch.ops.trtllm_flash.add_rms_norm(rows, res3, norm_weight, EPS)
        y3, t3 = torch.ops.trtllm_flash.add_rms_norm_linear(rows, res3, norm_weight, w, EPS)
        torch.testing.assert_close(t3, total3, rtol=0, atol=0)
    elif gated:
        gate3 = randn(1, 3, k, seed=6, **bf16)
        normed = torch.ops.trtllm_flash.rms_norm_gated(rows, norm_weight, gate3, EPS, group)
        y3 = torch.ops.trtllm_flash.rms_norm_linear(rows, norm_weight, w, EPS, group, gate3)
    else:
        normed = torch.ops.trtllm_flash.rms_norm(rows.unflatten(-1, (-1, group)), norm_weight, EPS).flatten(-2)
        y3 = torch.ops.trtllm_flash.rms_norm_linear(rows, norm_weight, w, EPS, group)
    torch.testing.assert_close(y3, F.linear(normed, w), rtol=0, atol=0)
