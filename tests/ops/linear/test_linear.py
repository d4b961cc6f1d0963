"""linear op: the Triton GEMV (interpreted) against F.linear, which rows take the GEMV, registration, fake
shapes, bad input; on the GPU the compiled GEMV at the 1B / 3B projection shapes."""
import pytest
import torch
import torch.nn.functional as F
import triton

import trtllm_flash.ops.linear  # noqa: F401  (registers the op)
from trtllm_flash.ops import pdl
from trtllm_flash.ops.linear import kernels
from trtllm_flash.ops.linear.ops import uses_gemv

# fp32 accumulation in both; they differ in summation order only, then bf16 rounds the result once
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=1e-2, rtol=2**-7)}
SMALL = triton.Config({"BLOCK_N": 4, "BLOCK_K": 32}, num_warps=1)


def randn(*shape, dtype=torch.float32, seed=0, device="cpu"):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,k", [(10, 70), (16, 64), (3, 31)])  # ragged row blocks and K tiles, and exact ones
def test_gemv_kernel_matches_linear(dtype, n, k):
    x, w = randn(1, 1, k, dtype=dtype), randn(n, k, dtype=dtype, seed=1)
    y = kernels.gemv_triton(x, w, config=SMALL)
    assert y.shape == (1, 1, n) and y.dtype == dtype
    expected = F.linear(x.float(), w.float()).to(dtype)
    torch.testing.assert_close(y, expected, **TOL[dtype])


def test_gemv_kernel_reads_a_strided_row():
    wide = randn(1, 96)
    x = wide[:, 16:80]  # one row of 64 out of a wider buffer
    w = randn(8, 64, seed=1)
    torch.testing.assert_close(kernels.gemv_triton(x, w, config=SMALL), F.linear(x, w), **TOL[torch.float32])


def test_op_on_cpu_is_f_linear_exactly():
    x, w = randn(2, 3, 24), randn(5, 24, seed=1)
    torch.testing.assert_close(torch.ops.trtllm_flash.linear(x, w), F.linear(x, w), rtol=0, atol=0)


def test_only_one_contiguous_half_precision_row_takes_the_gemv():
    w = randn(8, 16, dtype=torch.bfloat16)
    assert uses_gemv(randn(1, 1, 16, dtype=torch.bfloat16), w)
    assert not uses_gemv(randn(1, 2, 16, dtype=torch.bfloat16), w)  # two tokens: cuBLAS
    assert not uses_gemv(randn(1, 16), randn(8, 16))  # fp32: cuBLAS
    assert not uses_gemv(randn(1, 16, dtype=torch.bfloat16), randn(16, 8, dtype=torch.bfloat16).t())  # strided weight


def test_fake_shapes_and_bad_input():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        y = torch.ops.trtllm_flash.linear(torch.empty(2, 7, 24), torch.empty(5, 24))
    assert y.shape == (2, 7, 5)
    with pytest.raises(ValueError, match="K = 24"):
        torch.ops.trtllm_flash.linear(randn(2, 25), randn(5, 24))
    with pytest.raises(ValueError, match="2-D"):
        torch.ops.trtllm_flash.linear(randn(2, 24), randn(5, 24, 1))
    with pytest.raises(ValueError, match="float"):
        torch.ops.trtllm_flash.linear(torch.ones(2, 24, dtype=torch.int32), randn(5, 24))


def test_pdl_only_for_compiled_kernels_on_hopper(monkeypatch):
    assert not pdl.enabled(torch.zeros(1))  # CPU tensors never
    if torch.cuda.is_available():
        on_gpu = torch.zeros(1, device="cuda")
        monkeypatch.delenv("TRITON_INTERPRET", raising=False)
        monkeypatch.delenv(pdl.ENV_SWITCH, raising=False)
        assert pdl.enabled(on_gpu) == (torch.cuda.get_device_capability()[0] >= 9)
        monkeypatch.setenv(pdl.ENV_SWITCH, "0")
        assert not pdl.enabled(on_gpu)


@pytest.mark.gpu
@pytest.mark.parametrize("n,k", [(6160, 2048), (2048, 6144), (12640, 3072), (131072, 2048)])
def test_gemv_on_the_gpu_at_model_shapes(n, k):
    x = randn(1, 1, k, dtype=torch.bfloat16, device="cuda")
    w = randn(n, k, dtype=torch.bfloat16, seed=1, device="cuda") * 0.02
    assert uses_gemv(x, w)
    y = torch.ops.trtllm_flash.linear(x, w)
    exact = F.linear(x.float(), w.float())
    # one bf16 rounding of an fp32 sum: within 2^-8 relative of the exact product, plus summation-order noise
    torch.testing.assert_close(y.float(), exact, rtol=2**-7, atol=1e-3)
    batched = randn(1, 3, k, dtype=torch.bfloat16, device="cuda")
    torch.testing.assert_close(torch.ops.trtllm_flash.linear(batched, w), F.linear(batched, w), rtol=0, atol=0)
