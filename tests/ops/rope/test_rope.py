"""RoPE op: the reference against an independent formula (complex rotation of the pairs ``(x_i, x_{i+d/2})``)
and the eager model's ``apply_rope``, the Triton kernel (interpreted) against the reference on strided q/k
views with h != hkv, the registered op (CPU path, fake / schema) and bad input."""
import pytest
import torch

import trtllm_flash.ops.rope  # noqa: F401  (registers the op)
from trtllm_flash.modeling.rope import RotaryEmbedding, apply_rope
from trtllm_flash.ops.rope import kernels, reference

# kernel vs reference: fp32 compute in both; bf16 outputs may differ by one rounding step (2^-8 relative)
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=1e-2)}
DTYPES = [torch.float32, torch.bfloat16]
B, S, H, HKV, D = 2, 5, 6, 2, 36  # d / 2 = 18: not a power of two; h = 6: not a power of two


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def cos_sin(b, s, d, base=10000.0, offset=0):
    """The model's rotary tables for positions ``offset + [0, s)`` (per sequence ``i``: ``+ 3 * i``)."""
    positions = offset + torch.arange(s)[None, :] + 3 * torch.arange(b)[:, None]
    return RotaryEmbedding(d, base)(torch.empty(0), positions)


def fused_qk(b, s, h, hkv, d, dtype, seed=0):
    """q, k as the export graph sees them after ``fuse_gemms``: ``split_with_sizes`` of one fused projection
    ``[b, s, (h + 2 hkv) d]`` (q, k, v) then ``reshape`` to heads — non-contiguous views."""
    fused = randn(b, s, (h + 2 * hkv) * d, dtype=dtype, seed=seed)
    q, k, _ = fused.split_with_sizes([h * d, hkv * d, hkv * d], dim=-1)
    q, k = q.reshape(b, s, h, d), k.reshape(b, s, hkv, d)
    if b * s > 1:  # with one token torch calls any view of one row contiguous
        assert not q.is_contiguous() and not k.is_contiguous()
    return q, k


def test_reference_equals_complex_rotation_of_pairs():
    q, k = randn(B, S, H, D, seed=1), randn(B, S, HKV, D, seed=2)
    cos, sin = cos_sin(B, S, D)
    q_out, k_out = reference.rope_reference(q, k, cos, sin)
    # cos / sin = cat(freqs, freqs): the first half holds e^{i theta} for every pair
    rotation = torch.complex(cos[..., : D // 2].double(), sin[..., : D // 2].double())[:, :, None, :]
    for x, out in ((q, q_out), (k, k_out)):
        x64 = x.double()
        z = torch.complex(x64[..., : D // 2], x64[..., D // 2 :]) * rotation
        torch.testing.assert_close(out, torch.cat([z.real, z.imag], -1).float(), atol=1e-5, rtol=1e-5)


def test_reference_rotates_by_position():
    """Position 0 leaves x unchanged; the rotation keeps each pair's norm."""
    q, k = randn(1, 4, H, D, seed=1), randn(1, 4, HKV, D, seed=2)
    cos, sin = cos_sin(1, 4, D)
    q_out, k_out = reference.rope_reference(q, k, cos, sin)
    torch.testing.assert_close(q_out[:, 0], q[:, 0], atol=0, rtol=0)
    torch.testing.assert_close(k_out[:, 0], k[:, 0], atol=0, rtol=0)
    pair_norm = lambda x: x[..., : D // 2] ** 2 + x[..., D // 2 :] ** 2  # noqa: E731
    torch.testing.assert_close(pair_norm(q_out), pair_norm(q), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(q_out[:, 1:], q[:, 1:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_is_bit_exact_with_the_eager_model(dtype):
    """The export patch used to call the same formula as the eager ``modeling.rope.apply_rope``."""
    q, k = fused_qk(B, S, H, HKV, D, dtype)
    cos, sin = cos_sin(B, S, D, offset=100)
    q_out, k_out = reference.rope_reference(q, k, cos, sin)
    torch.testing.assert_close(q_out, apply_rope(q, cos, sin), atol=0, rtol=0)
    torch.testing.assert_close(k_out, apply_rope(k, cos, sin), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("b, s, h, hkv, d", [(B, S, H, HKV, D), (3, 1, 16, 4, 128), (1, 7, 3, 3, 8)])
def test_kernel_on_strided_views(dtype, b, s, h, hkv, d):
    q, k = fused_qk(b, s, h, hkv, d, dtype)
    cos, sin = cos_sin(b, s, d, offset=37)
    q_out, k_out = kernels.rope_triton(q, k, cos, sin)
    q_ref, k_ref = reference.rope_reference(q, k, cos, sin)
    for out, ref in ((q_out, q_ref), (k_out, k_ref)):
        assert out.dtype == dtype and out.shape == ref.shape and out.is_contiguous()
        torch.testing.assert_close(out, ref, **TOL[dtype])


def test_kernel_on_contiguous_inputs_and_broadcast_tables():
    """Contiguous q / k, and ``cos, sin`` expanded over the batch (stride 0), with arbitrary (non-duplicated)
    halves: the kernel reads all d entries of the tables, as the reference does."""
    q, k = randn(3, 4, 8, 16, seed=1), randn(3, 4, 2, 16, seed=2)
    cos, sin = randn(1, 4, 16, seed=3).expand(3, 4, 16), randn(1, 4, 16, seed=4).expand(3, 4, 16)
    for out, ref in zip(kernels.rope_triton(q, k, cos, sin), reference.rope_reference(q, k, cos, sin)):
        torch.testing.assert_close(out, ref, **TOL[torch.float32])


def test_kernel_empty_batch():
    q, k = randn(0, 3, 4, 8), randn(0, 3, 2, 8)
    cos, sin = randn(0, 3, 8), randn(0, 3, 8)
    q_out, k_out = kernels.rope_triton(q, k, cos, sin)
    assert q_out.shape == q.shape and k_out.shape == k.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_op_cpu_path_is_the_reference(dtype):
    q, k = fused_qk(B, S, H, HKV, D, dtype)
    cos, sin = cos_sin(B, S, D)
    q_out, k_out = torch.ops.trtllm_flash.rope(q, k, cos, sin)
    q_ref, k_ref = reference.rope_reference(q, k, cos, sin)
    assert q_out.is_contiguous() and k_out.is_contiguous()
    torch.testing.assert_close(q_out, q_ref, atol=0, rtol=0)
    torch.testing.assert_close(k_out, k_ref, atol=0, rtol=0)


@pytest.mark.parametrize("strided", [False, True])
def test_op_fake_and_schema(strided):
    q, k = fused_qk(B, S, H, HKV, D, torch.bfloat16)
    if not strided:
        q, k = q.contiguous(), k.contiguous()
    cos, sin = cos_sin(B, S, D)
    torch.library.opcheck(torch.ops.trtllm_flash.rope.default, (q, k, cos, sin))


def test_op_fake_shapes():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        q, k = torch.empty(4, 1, 24, 128, dtype=torch.bfloat16), torch.empty(4, 1, 8, 128, dtype=torch.float16)
        cos, sin = torch.empty(4, 1, 128), torch.empty(4, 1, 128)
        q_out, k_out = torch.ops.trtllm_flash.rope(q, k, cos, sin)
        assert (q_out.shape, q_out.dtype) == ((4, 1, 24, 128), torch.bfloat16)
        assert (k_out.shape, k_out.dtype) == ((4, 1, 8, 128), torch.float16)
        with pytest.raises(ValueError, match="cos"):
            torch.ops.trtllm_flash.rope(q, k, cos[:, :, :64], sin)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda q, k, c, s: (q.long(), k, c, s), "q"),
        (lambda q, k, c, s: (q, k.int(), c, s), "k"),
        (lambda q, k, c, s: (q[0], k, c, s), "q"),
        (lambda q, k, c, s: (q, k[:, :1], c, s), "k"),
        (lambda q, k, c, s: (q, k[..., :-2], c, s), "k"),
        (lambda q, k, c, s: (q[..., :-1], k[..., :-1], c[..., :-1], s[..., :-1]), "even"),
        (lambda q, k, c, s: (q, k, c[:1], s), "cos"),
        (lambda q, k, c, s: (q, k, c, s[..., :-2]), "sin"),
        (lambda q, k, c, s: (q, k, c.bfloat16(), s), "cos"),
        (lambda q, k, c, s: (q, k, c, s.double()), "sin"),
    ],
)
def test_op_rejects_bad_input(call, argument):
    q, k = randn(B, S, H, D, seed=1), randn(B, S, HKV, D, seed=2)
    cos, sin = cos_sin(B, S, D)
    with pytest.raises(ValueError, match=argument):
        torch.ops.trtllm_flash.rope(*call(q, k, cos, sin))


@pytest.mark.gpu
@pytest.mark.parametrize(
    "b, s, h, hkv",
    [(1, 1, 16, 4), (2, 1, 16, 4), (4, 1, 16, 4), (4, 1, 24, 8), (2, 1000, 16, 4), (1, 4099, 24, 8)],
)
def test_kernel_at_model_shapes_on_gpu(b, s, h, hkv):
    """Decode (s = 1) and prefill at the 1B (16 / 4 heads) and 3B (24 / 8 heads) shapes, d = 128, bf16,
    q / k as strided views of a fused projection; the dispatcher picks the Triton kernel for CUDA tensors."""
    dtype, d = torch.bfloat16, 128
    q, k = (t.cuda() for t in fused_qk(b, s, h, hkv, d, dtype))
    cos, sin = (t.cuda() for t in cos_sin(b, s, d, offset=5000))
    q_out, k_out = torch.ops.trtllm_flash.rope(q, k, cos, sin)
    q_ref, k_ref = reference.rope_reference(q, k, cos, sin)
    assert q_out.is_contiguous() and k_out.is_contiguous()
    torch.testing.assert_close(q_out, q_ref, **TOL[dtype])
    torch.testing.assert_close(k_out, k_ref, **TOL[dtype])
