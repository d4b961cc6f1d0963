"""Source op ``attention`` and its Triton path against an independent masked-SDPA oracle and the reference."""
import pytest
import torch
import torch.nn.functional as F
from attention_cases import D, H, HKV, SCALE, assert_close

from trtllm_flash.ops.attention import attention_fast, attention_reference


def sdpa_oracle(q, k, v, scale, window):
    """torch SDPA with an explicit boolean mask: query i sees keys j with i - window < j <= i."""
    s = q.shape[1]
    i = torch.arange(s)[:, None]
    j = torch.arange(s)[None, :]
    mask = (j <= i) & ((i - j < window) if window else True)
    group = q.shape[2] // k.shape[2]
    qt, kt, vt = (t.float().transpose(1, 2) for t in (q, k.repeat_interleave(group, 2), v.repeat_interleave(group, 2)))
    return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask, scale=scale).transpose(1, 2)


def qkv(b, s, dtype, seed=0, h=H, hkv=HKV, d=D):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, s, n, d, generator=g).to(dtype) for n in (h, hkv, hkv))


@pytest.mark.parametrize("window", [0, 1, 7, 37, 100])
def test_reference_matches_sdpa_oracle(window):
    q, k, v = qkv(2, 37, torch.float32)
    torch.testing.assert_close(attention_reference(q, k, v, SCALE, window), sdpa_oracle(q, k, v, SCALE, window), atol=1e-5, rtol=1e-5)


def test_window_one_is_identity_on_values():
    q, k, v = qkv(1, 9, torch.float32)
    out = torch.ops.trtllm_flash.attention(q, k, v, SCALE, 1)
    torch.testing.assert_close(out, v.repeat_interleave(H // HKV, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eager_op_matches_oracle(dtype):
    q, k, v = qkv(2, 37, dtype)
    out = torch.ops.trtllm_flash.attention(q, k, v, SCALE, 7)
    assert out.dtype == dtype and out.shape == q.shape
    assert_close(out, sdpa_oracle(q, k, v, SCALE, 7), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [0, 5, 70])
def test_triton_source_matches_reference(dtype, window):
    q, k, v = qkv(2, 70, dtype, seed=1)
    out = attention_fast(q, k, v, SCALE, window)
    assert out.dtype == dtype
    assert_close(out, attention_reference(q, k, v, SCALE, window), dtype)


def test_triton_source_plain_mha_and_pow2_dims():
    q, k, v = qkv(1, 33, torch.float32, h=4, hkv=4, d=32)
    assert_close(attention_fast(q, k, v, 0.5, 0), attention_reference(q, k, v, 0.5, 0), torch.float32)


def test_fake_and_schema_pass_opcheck():
    q, k, v = qkv(1, 5, torch.float32)
    torch.library.opcheck(torch.ops.trtllm_flash.attention.default, (q, k, v, SCALE, 0))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda q, k, v: (q[0], k, v, SCALE, 0), "q must be 4-D"),
        (lambda q, k, v: (q.int(), k, v, SCALE, 0), "q must be float32"),
        (lambda q, k, v: (q, k[:, :3], v, SCALE, 0), "k must be"),
        (lambda q, k, v: (q, k, v.double(), SCALE, 0), "v must have q's dtype"),
        (lambda q, k, v: (q, k, v[:, :, :1], SCALE, 0), "v must have k's 2 kv heads"),
        (lambda q, k, v: (q[:, :, :5], k, v, SCALE, 0), "kv heads must divide q's 5 heads"),
        (lambda q, k, v: (q, k, v, float("nan"), 0), "scale must be"),
        (lambda q, k, v: (q, k, v, SCALE, -1), "sliding_window must be >= 0"),
    ],
)
def test_bad_source_input_names_the_argument(change, match):
    with pytest.raises(ValueError, match=match):
        torch.ops.trtllm_flash.attention(*change(*qkv(1, 4, torch.float32)))

