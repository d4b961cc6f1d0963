"""Norm ops: references against independent formulas, Triton kernels (interpreted) against the references,
op registration (fake / schema) and bad input."""
import pytest
import torch
import torch.nn.functional as F

import trtllm_flash.ops.norms  # noqa: F401  (registers the ops)
from trtllm_flash.ops.norms import kernels, reference

# kernel vs reference: fp32 compute in both; bf16 outputs may differ by one rounding step (2^-8 relative)
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=1e-2)}
DTYPES = [torch.float32, torch.bfloat16]
SHAPE = (3, 5, 36)  # 15 rows of 36: not a power of two


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def test_rms_norm_reference_formula():
    x, w = randn(*SHAPE, dtype=torch.bfloat16), randn(36, dtype=torch.bfloat16, seed=1)
    xf = x.float()
    normed = (xf / torch.sqrt((xf * xf).sum(-1, keepdim=True) / 36 + 1e-5)).to(torch.bfloat16)
    torch.testing.assert_close(reference.rms_norm_reference(x, w, 1e-5), w * normed, atol=0, rtol=0)


def test_gated_reference_equals_per_group_rms_norm_of_gated_input():
    x, g, w = randn(*SHAPE), randn(*SHAPE, seed=1), randn(36, seed=2)
    y = x * F.silu(g)
    per_group = torch.cat([reference.rms_norm_reference(part, w[i * 12 : (i + 1) * 12], 1e-5) for i, part in enumerate(y.split(12, -1))], -1)
    torch.testing.assert_close(reference.rms_norm_gated_reference(x, w, g, 1e-5, 12), per_group, atol=1e-6, rtol=1e-6)


def test_l2norm_reference_matches_normalize():
    """fla's l2norm computes the same formula but autotunes, which the Triton interpreter cannot run."""
    x = randn(*SHAPE)
    torch.testing.assert_close(reference.l2norm_reference(x, 1e-6), F.normalize(x, dim=-1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rms_norm_kernel(dtype):
    x, w = randn(*SHAPE, dtype=dtype), randn(36, dtype=dtype, seed=1)
    out = kernels.rms_norm_triton(x, w, 1e-5)
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference.rms_norm_reference(x, w, 1e-5), **TOL[dtype])


def test_rms_norm_kernel_fp32_weight_promotes():
    x, w = randn(*SHAPE, dtype=torch.bfloat16), randn(36, seed=1)
    out = kernels.rms_norm_triton(x, w, 1e-5)
    assert out.dtype == torch.float32
    # the normalised x is rounded to bf16 before the fp32 weight: one bf16 rounding step apart at most
    torch.testing.assert_close(out, reference.rms_norm_reference(x, w, 1e-5), **TOL[torch.bfloat16])


@pytest.mark.parametrize("dtype", DTYPES)
def test_add_rms_norm_kernel(dtype):
    x, r, w = randn(*SHAPE, dtype=dtype), randn(*SHAPE, dtype=dtype, seed=1), randn(36, dtype=dtype, seed=2)
    normed, total = kernels.add_rms_norm_triton(x, r, w, 1e-6)
    normed_ref, total_ref = reference.add_rms_norm_reference(x, r, w, 1e-6)
    # the Triton interpreter's fp32 -> bf16 cast may differ from torch's round-to-nearest by one step
    # (on the GPU the sum is bit-exact: see the gpu test)
    torch.testing.assert_close(total, total_ref, **TOL[dtype])
    torch.testing.assert_close(normed, normed_ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("group_size", [36, 12, 9])
def test_rms_norm_gated_kernel(dtype, group_size):
    x, g, w = randn(*SHAPE, dtype=dtype), randn(*SHAPE, dtype=dtype, seed=1), randn(36, dtype=dtype, seed=2)
    out = kernels.rms_norm_gated_triton(x, w, g, 1e-5, group_size)
    assert out.dtype == dtype
    torch.testing.assert_close(out, reference.rms_norm_gated_reference(x, w, g, 1e-5, group_size), **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_l2norm_kernel_on_a_strided_view(dtype):
    x = randn(7, 4, 50, dtype=dtype)[..., 3:40]
    out = kernels.l2norm_triton(x, 1e-6)
    torch.testing.assert_close(out, reference.l2norm_reference(x, 1e-6), **TOL[dtype])


def tiny_rows(shape, norm_of_row, seed=0):
    """fp32 rows whose ``norm_of_row`` (a function of a row) ranges over 0.3 .. 3 x sqrt(EPS), where eps changes
    a norm's output by 10 % .. 3x, and one all-zero row (the output must be 0, not NaN)."""
    x = randn(*shape, seed=seed).reshape(-1, shape[-1])
    scale = torch.linspace(0.3, 3.0, x.shape[0]).unsqueeze(-1) * SMALL_EPS**0.5
    x = x / norm_of_row(x) * scale
    x[0] = 0
    return x.reshape(shape)


SMALL_EPS = 1e-5


def rms(x):
    return x.pow(2).mean(-1, keepdim=True).sqrt()


def exact_rms_norm(y, w, group_size):
    """float64 ``w * y / sqrt(mean(y^2) + eps)`` per group of ``group_size``."""
    groups = y.double().unflatten(-1, (-1, group_size))
    normed = groups / torch.sqrt(groups.pow(2).mean(-1, keepdim=True) + SMALL_EPS)
    return w.double() * normed.flatten(-2)


def check_small(out, want):
    assert torch.isfinite(out).all()
    assert out.reshape(-1, out.shape[-1])[0].abs().max() == 0  # the zero row
    torch.testing.assert_close(out.double(), want, atol=1e-5, rtol=1e-5)


def test_norm_kernels_on_rows_of_magnitude_sqrt_eps_and_zero_rows():
    """Where eps matters: every kernel and its reference against a float64 formula, and finite."""
    w = 1 + 0.1 * randn(36, seed=1)
    x = tiny_rows(SHAPE, rms)
    want = exact_rms_norm(x, w, 36)
    for out in (kernels.rms_norm_triton(x, w, SMALL_EPS), reference.rms_norm_reference(x, w, SMALL_EPS)):
        check_small(out, want)

    residual = tiny_rows(SHAPE, rms, seed=2) - x  # x + residual is the tiny row, neither part is
    residual.reshape(-1, 36)[0] = -x.reshape(-1, 36)[0]
    total_want = x + residual
    for normed, total in (kernels.add_rms_norm_triton(x, residual, w, SMALL_EPS),
                          reference.add_rms_norm_reference(x, residual, w, SMALL_EPS)):
        torch.testing.assert_close(total, total_want, atol=0, rtol=0)
        check_small(normed, exact_rms_norm(total_want, w, 36))

    gate = randn(*SHAPE, seed=3)
    gated = tiny_rows(SHAPE, lambda r: rms(r * F.silu(gate.reshape(-1, 36))), seed=4)
    for group in (36, 12):
        want = exact_rms_norm(gated.double() * F.silu(gate.double()), w, group)
        for out in (kernels.rms_norm_gated_triton(gated, w, gate, SMALL_EPS, group),
                    reference.rms_norm_gated_reference(gated, w, gate, SMALL_EPS, group)):
            check_small(out, want)

    unit = tiny_rows(SHAPE, lambda r: r.norm(dim=-1, keepdim=True))  # |x|^2 ~ eps for the L2 norm
    want = unit.double() / torch.sqrt(unit.double().pow(2).sum(-1, keepdim=True) + SMALL_EPS)
    for out in (kernels.l2norm_triton(unit, SMALL_EPS), reference.l2norm_reference(unit, SMALL_EPS)):
        check_small(out, want)


@pytest.mark.parametrize(
    "op, args",
    [
        ("rms_norm", lambda x, w, g: (x, w, 1e-5)),
        ("add_rms_norm", lambda x, w, g: (x, g, w, 1e-5)),
        ("rms_norm_gated", lambda x, w, g: (x, w, g, 1e-5, 12)),
        ("l2norm", lambda x, w, g: (x, 1e-6)),
    ],
)
def test_ops_fake_and_schema(op, args):
    x, w, g = randn(*SHAPE, dtype=torch.bfloat16), randn(36, dtype=torch.bfloat16, seed=1), randn(*SHAPE, dtype=torch.bfloat16, seed=2)
    torch.library.opcheck(getattr(torch.ops.trtllm_flash, op).default, args(x, w, g))


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda x, w, g: torch.ops.trtllm_flash.rms_norm(x, w[:-1], 1e-5), "weight"),
        (lambda x, w, g: torch.ops.trtllm_flash.rms_norm(x.long(), w, 1e-5), "x"),
        (lambda x, w, g: torch.ops.trtllm_flash.rms_norm(x, w, -1.0), "eps"),
        (lambda x, w, g: torch.ops.trtllm_flash.add_rms_norm(x, g[:1], w, 1e-5), "residual"),
        (lambda x, w, g: torch.ops.trtllm_flash.rms_norm_gated(x, w, g.half(), 1e-5, 12), "gate"),
        (lambda x, w, g: torch.ops.trtllm_flash.rms_norm_gated(x, w, g, 1e-5, 10), "group_size"),
        (lambda x, w, g: torch.ops.trtllm_flash.l2norm(x[..., :0], 1e-6), "x"),
    ],
)
def test_ops_reject_bad_input(call, argument):
    with pytest.raises(ValueError, match=argument):
        call(randn(*SHAPE), randn(36, seed=1), randn(*SHAPE, seed=2))


@pytest.mark.gpu
@pytest.mark.parametrize("hidden, group", [(2048, 2048), (3072, 3072), (6144, 6144), (128, 128)])
def test_kernels_at_model_shapes_on_gpu(hidden, group):
    """Decoder RMSNorm (1B / 3B hidden), Mamba2 gated norm (d_inner 6144, one group), DeltaNet o_norm / l2norm (128)."""
    dtype = torch.bfloat16
    x, r, g = (randn(4099, hidden, dtype=dtype, seed=s).cuda() for s in range(3))
    w = randn(hidden, dtype=dtype, seed=3).cuda()
    torch.testing.assert_close(torch.ops.trtllm_flash.rms_norm(x, w, 1e-5), reference.rms_norm_reference(x, w, 1e-5), **TOL[dtype])
    normed, total = torch.ops.trtllm_flash.add_rms_norm(x, r, w, 1e-5)
    normed_ref, total_ref = reference.add_rms_norm_reference(x, r, w, 1e-5)
    torch.testing.assert_close(total, total_ref, atol=0, rtol=0)
    torch.testing.assert_close(normed, normed_ref, **TOL[dtype])
    gated = torch.ops.trtllm_flash.rms_norm_gated(x, w, g, 1e-5, group)
    torch.testing.assert_close(gated, reference.rms_norm_gated_reference(x, w, g, 1e-5, group), **TOL[dtype])
    torch.testing.assert_close(torch.ops.trtllm_flash.l2norm(x, 1e-6), reference.l2norm_reference(x, 1e-6), **TOL[dtype])
