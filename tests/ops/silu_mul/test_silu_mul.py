"""silu_mul: the reference against the unfused eager formula (bit-exact), the Triton kernel (interpreted)
against the reference, op registration (fake / schema) and bad input."""
import pytest
import torch
import torch.nn.functional as F

import trtllm_flash.ops.silu_mul  # noqa: F401  (registers the op)
from trtllm_flash.ops.silu_mul import kernels, reference

# kernel vs reference. The kernel rounds silu(g) * u once from fp32; the reference (= the eager graph) rounds
# silu(g) to x's dtype before the multiply, then the product: bf16 / fp16 outputs may differ by up to two
# rounding steps of the output dtype (rtol 2^-6 bf16, 2^-9 fp16; the Triton interpreter's fp32 -> bf16 cast
# may truncate, a full step, where the GPU rounds to nearest). fp32: agreement to fp32 rounding.
TOL = {
    torch.float32: dict(atol=1e-6, rtol=1e-5),
    torch.bfloat16: dict(atol=1e-5, rtol=2**-6),
    torch.float16: dict(atol=1e-5, rtol=2**-9),
}
DTYPES = [torch.float32, torch.bfloat16, torch.float16]
F_DIM = 36  # not a power of two
SHAPE = (3, 5, 2 * F_DIM)


def randn(*shape, dtype=torch.float32, seed=0, scale=2.0):
    return (scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_is_bit_exact_with_the_unfused_eager_ffn(dtype):
    """What the exported FFN computes today: the fused gate/up GEMM output split into two views, aten.silu on
    the gate (rounded to x's dtype), then aten.mul with up. The views matter on the CPU: its vectorised silu
    can differ by an fp32 ulp between a strided view and a contiguous copy of the same values."""
    h, w = randn(3, 5, 24, dtype=dtype), randn(2 * F_DIM, 24, dtype=dtype, seed=1, scale=0.3)
    x = F.linear(h, w)
    gate, up = torch.split(x, [F_DIM, F_DIM], -1)
    expected = F.silu(gate) * up
    out = reference.silu_mul_reference(x)
    assert out.dtype == dtype and out.shape == (3, 5, F_DIM)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    torch.testing.assert_close(torch.ops.trtllm_flash.silu_mul(x), expected, atol=0, rtol=0)


def test_reference_formula():
    x = randn(*SHAPE, dtype=torch.float64)
    gate, up = x[..., :F_DIM], x[..., F_DIM:]
    torch.testing.assert_close(reference.silu_mul_reference(x), gate / (1 + torch.exp(-gate)) * up, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel(dtype):
    x = randn(*SHAPE, dtype=dtype)
    out = kernels.silu_mul_triton(x)
    assert out.dtype == dtype and out.shape == (3, 5, F_DIM) and out.is_contiguous()
    torch.testing.assert_close(out, reference.silu_mul_reference(x), **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "make_x",
    [
        pytest.param(lambda t: t[..., 10 : 10 + 2 * F_DIM], id="strided-rows"),  # rows of stride 100 > 2F
        pytest.param(lambda t: t[:, ::2, 10 : 10 + 2 * F_DIM], id="rows-not-one-stride"),
        pytest.param(lambda t: t.reshape(-1, 100)[:, 10 : 10 + 2 * F_DIM].t().contiguous().t(), id="column-major"),
    ],
)
def test_kernel_on_non_contiguous_views(dtype, make_x):
    x = make_x(randn(4, 6, 100, dtype=dtype))
    assert not x.is_contiguous()
    out = kernels.silu_mul_triton(x)
    assert out.shape == (*x.shape[:-1], F_DIM) and out.is_contiguous()
    torch.testing.assert_close(out, reference.silu_mul_reference(x), **TOL[dtype])


def test_kernel_spans_several_column_blocks():
    """F > MAX_BLOCK: one row is several programs, the last one masked."""
    f = kernels.MAX_BLOCK + 300
    x = randn(2, 2 * f)
    torch.testing.assert_close(kernels.silu_mul_triton(x), reference.silu_mul_reference(x), **TOL[torch.float32])


def test_kernel_with_no_rows():
    out = kernels.silu_mul_triton(randn(0, 5, 2 * F_DIM))
    assert out.shape == (0, 5, F_DIM)


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(randn(*SHAPE, dtype=torch.bfloat16), id="bf16"),
        pytest.param(randn(4, 6, 100)[..., 10 : 10 + 2 * F_DIM], id="strided-rows"),
        pytest.param(randn(5, 3, 2 * F_DIM).transpose(0, 1), id="permuted"),
        pytest.param(randn(2 * F_DIM, dtype=torch.float16), id="1-dim"),
    ],
)
def test_op_fake_and_schema(x):
    torch.library.opcheck(torch.ops.trtllm_flash.silu_mul.default, (x,))


def test_fake_shape_under_fake_tensors():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        out = torch.ops.trtllm_flash.silu_mul(torch.empty(7, 3, 2 * F_DIM, dtype=torch.bfloat16))
    assert out.shape == (7, 3, F_DIM) and out.dtype == torch.bfloat16


@pytest.mark.parametrize(
    "x, message",
    [
        pytest.param(randn(3, 2 * F_DIM + 1), "last dim must be even", id="odd-last-dim"),
        pytest.param(randn(3, 0), "last dim must be even and non-zero", id="empty-last-dim"),
        pytest.param(torch.ones(3, 2 * F_DIM, dtype=torch.int64), "float32, bfloat16 or float16", id="int64"),
        pytest.param(torch.tensor(1.0), "0-dim", id="0-dim"),
    ],
)
def test_op_rejects_bad_input(x, message):
    with pytest.raises(ValueError, match=message):
        torch.ops.trtllm_flash.silu_mul(x)


@pytest.mark.gpu
@pytest.mark.parametrize("rows", [1, 8, 4099])
@pytest.mark.parametrize("ffn", [6144, 9216])
def test_cuda_kernel_at_model_shapes(rows, ffn):
    """The 1B / 3B FFN widths at decode (1, 8 rows) and prefill (4099) sizes, reading the halves straight
    out of a wider buffer (rows of stride 2F + 64) in bf16. It rounds where the eager graph rounds, so it
    matches eager CUDA ``F.silu(g) * u`` up to a rare one-step flip (fp32 sigmoid differences), and lies
    within two rounding steps of the exact fp32 product."""
    dtype = torch.bfloat16
    wide = randn(rows, 2 * ffn + 64, dtype=dtype).cuda()
    for x in (wide[:, : 2 * ffn].contiguous(), wide[:, 32 : 32 + 2 * ffn]):
        out = torch.ops.trtllm_flash.silu_mul(x)
        assert out.shape == (rows, ffn) and out.dtype == dtype and out.is_contiguous()
        xf = x.float()
        exact = F.silu(xf[:, :ffn]) * xf[:, ffn:]
        torch.testing.assert_close(out.float(), exact, atol=1e-6, rtol=2**-7 * 1.001)
        eager = F.silu(x[:, :ffn]) * x[:, ffn:]
        torch.testing.assert_close(out, eager, atol=1e-6, rtol=2**-8 * 1.001)
        assert (out != eager).float().mean().item() < 1e-3
