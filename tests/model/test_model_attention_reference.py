"""The eager attention layer against an outside reference: float64 q/k RMSNorm (eps 1e-6, the remote code's
RMSNorm default), rotate-half RoPE from ``rope_theta``, GQA by repeating kv heads, and
``F.scaled_dot_product_attention`` with an explicit boolean mask (causal, and the sliding window).

Inputs are scaled so the q/k rows' mean square sits near the norms' eps, where a wrong eps shows.
"""
import pytest
import torch
import torch.nn.functional as F

from trtllm_flash.loading import load_model

QK_EPS = 1e-6
SEQ = 24  # past the tiny preset's window of 16


@pytest.fixture(scope="module")
def layers():
    model = load_model("tiny", dtype=torch.float32, device="cpu", seed=0).eval()
    found = {m.sliding_window: m for m in model.modules() if type(m).__name__ == "NemotronFlashAttention"}
    assert sorted(found) == [0, 16], "the tiny preset has one global and one sliding-window attention layer"
    for layer in found.values():  # non-trivial norm weights
        with torch.no_grad():
            layer.q_norm.weight.copy_(1 + 0.2 * torch.randn(layer.head_dim, generator=torch.Generator().manual_seed(1)))
            layer.k_norm.weight.copy_(1 + 0.2 * torch.randn(layer.head_dim, generator=torch.Generator().manual_seed(2)))
    return found


def rope64(x, positions, theta):
    """Rotate-half RoPE of ``x [b, s, h, d]`` in float64."""
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.double()[..., None] * inv_freq  # [b, s, d/2]
    cos, sin = (torch.cat([t, t], -1)[:, :, None] for t in (angles.cos(), angles.sin()))
    x1, x2 = x.chunk(2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def rms_norm64(x, weight):
    return weight.double() * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + QK_EPS)


def outside_reference(layer, hidden, positions):
    b, s, _ = hidden.shape
    h, hkv, d = layer.num_heads, layer.num_key_value_heads, layer.head_dim
    x = hidden.double()
    q = (x @ layer.q_proj.weight.double().T).view(b, s, h, d)
    k = (x @ layer.k_proj.weight.double().T).view(b, s, hkv, d)
    v = (x @ layer.v_proj.weight.double().T).view(b, s, hkv, -1)
    q, k = rms_norm64(q, layer.q_norm.weight), rms_norm64(k, layer.k_norm.weight)
    theta = layer.config.rope_theta
    q, k = rope64(q, positions, theta), rope64(k, positions, theta)
    k, v = (t.repeat_interleave(h // hkv, dim=2) for t in (k, v))
    i = torch.arange(s)[:, None]
    j = torch.arange(s)[None, :]
    mask = j <= i
    if layer.sliding_window > 0:
        mask &= i - j < layer.sliding_window
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=d**-0.5)
    return o.transpose(1, 2).reshape(b, s, -1) @ layer.o_proj.weight.double().T


@pytest.mark.parametrize("window", [16, 0], ids=["sliding-window", "global"])
@pytest.mark.parametrize("q_mean_square", [1.0, QK_EPS], ids=["unit-rows", "rows-near-eps"])
def test_attention_layer_matches_sdpa_with_explicit_masks(layers, window, q_mean_square):
    layer = layers[window]
    hidden = torch.randn(2, SEQ, layer.config.hidden_size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q = layer.q_proj(hidden)
    hidden = hidden * (q_mean_square / q.pow(2).mean()) ** 0.5
    positions = torch.arange(SEQ).expand(2, SEQ) + torch.tensor([[0], [5]])  # the second row starts at 5
    with torch.no_grad():
        out = layer(hidden, positions)
    want = outside_reference(layer, hidden, positions)
    scale = want.abs().max().item()
    assert (out.double() - want).abs().max().item() <= 1e-5 * scale
