"""linear_fp8: per-row e4m3 quantization, the Triton GEMV with scales (interpreted) against the fp32
reference, the op on the CPU, fake shapes and bad input; on the GPU the compiled GEMV and the
``torch._scaled_mm`` path at 1B / 3B projection shapes."""
import pytest
import torch
import triton

import trtllm_flash.ops.linear_fp8  # noqa: F401  (registers the op)
from trtllm_flash.ops.linear import kernels
from trtllm_flash.ops.linear_fp8 import quantize_rows
from trtllm_flash.ops.linear_fp8.ops import scaled_mm_rows, uses_scaled_mm
from trtllm_flash.ops.linear_fp8.reference import FP8, linear_fp8_reference

SMALL = triton.Config({"BLOCK_N": 4, "BLOCK_K": 32}, num_warps=1)


def randn(*shape, dtype=torch.float32, seed=0, device="cpu"):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype=dtype, device=device)


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def test_quantize_rows_scales_each_row_to_the_e4m3_range():
    w = randn(6, 40) * torch.tensor([1e-3, 1.0, 30.0, 0.0, 5.0, 1e2])[:, None]
    w8, scale = quantize_rows(w.to(torch.bfloat16))
    assert w8.dtype == FP8 and scale.dtype == torch.float32 and scale.shape == (6,)
    assert scale[3] == 1.0 and not w8[3].float().any()  # an all-zero row
    assert torch.allclose(w8.float().abs().amax(dim=1)[[0, 1, 2, 4, 5]], torch.full((5,), 448.0))
    # e4m3 keeps 3 mantissa bits: every element within 2^-4 relative (half an ulp) of the row's value
    back = w8.float() * scale[:, None]
    ref = w.to(torch.bfloat16).float()
    assert ((back - ref).abs() <= ref.abs() * 2**-4 + scale[:, None] * 2**-9).all()


@pytest.mark.parametrize("n,k", [(10, 70), (16, 64), (3, 31)])
def test_gemv_kernel_with_scales_matches_reference(n, k):
    x = randn(1, 1, k, dtype=torch.bfloat16)
    w8, scale = quantize_rows(randn(n, k, seed=1))
    y = kernels.gemv_triton(x, w8, config=SMALL, scale=scale)
    assert y.shape == (1, 1, n) and y.dtype == torch.bfloat16
    torch.testing.assert_close(y, linear_fp8_reference(x, w8, scale), atol=1e-2, rtol=2**-7)


def test_op_on_cpu_is_the_reference_and_close_to_bf16():
    x, w = randn(2, 3, 64, dtype=torch.bfloat16), randn(32, 64, seed=1) * 0.05
    w8, scale = quantize_rows(w)
    y = torch.ops.trtllm_flash.linear_fp8(x, w8, scale)
    torch.testing.assert_close(y, linear_fp8_reference(x, w8, scale), rtol=0, atol=0)
    assert rel_err(y, x.float() @ w.t()) < 0.05  # e4m3's 3 mantissa bits: a few per cent


def test_fake_shapes_and_bad_input():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        y = torch.ops.trtllm_flash.linear_fp8(torch.empty(2, 7, 32), torch.empty(16, 32, dtype=FP8), torch.empty(16))
    assert y.shape == (2, 7, 16)
    w8, scale = quantize_rows(randn(16, 32))
    with pytest.raises(ValueError, match="float8_e4m3fn"):
        torch.ops.trtllm_flash.linear_fp8(randn(1, 32), randn(16, 32), scale)
    with pytest.raises(ValueError, match="scale must be float32"):
        torch.ops.trtllm_flash.linear_fp8(randn(1, 32), w8, scale[:8])
    with pytest.raises(ValueError, match="K = 32"):
        torch.ops.trtllm_flash.linear_fp8(randn(1, 33), w8, scale)
    assert not uses_scaled_mm(randn(4, 32), w8)  # fp32 activations: the reference


@pytest.mark.gpu
@pytest.mark.parametrize("n,k", [(6160, 2048), (2048, 6144), (18432, 3072), (131072, 3072)])
def test_gemv_and_scaled_mm_on_the_gpu_at_model_shapes(n, k):
    w8, scale = quantize_rows(randn(n, k, seed=1, device="cuda") * 0.02)
    one = randn(1, 1, k, dtype=torch.bfloat16, device="cuda")
    ref = linear_fp8_reference(one, w8, scale)
    y = torch.ops.trtllm_flash.linear_fp8(one, w8, scale)
    assert rel_err(y, ref) < 4e-3  # fp32 accumulation, one bf16 rounding
    many = randn(64, k, dtype=torch.bfloat16, device="cuda", seed=2)
    assert uses_scaled_mm(many, w8)
    y = scaled_mm_rows(many, w8, scale)
    assert rel_err(y, linear_fp8_reference(many, w8, scale)) < 0.05  # x quantized to e4m3 as well
    torch.testing.assert_close(torch.ops.trtllm_flash.linear_fp8(many, w8, scale), y, rtol=0, atol=0)
