"""The reference model's forward: parameter names, logits normalisation, FFN variants, windows, init."""
import torch
import torch.nn.functional as F

from model_cases import random_ids, small_config, small_model
from trtllm_flash.loading import load_model
from trtllm_flash.modeling.attention import attend


def test_parameter_names_follow_the_published_checkpoint():
    model = small_model(["deltanet", "m2", "a", "f"])
    names = set(dict(model.named_parameters(remove_duplicate=False)))
    for suffix in ("q_proj", "k_proj", "v_proj", "b_proj", "o_proj", "q_conv1d", "k_conv1d", "v_conv1d", "o_norm"):
        assert f"model.layers.0.gla.{suffix}.weight" in names
    for suffix in ("in_proj.weight", "conv1d.weight", "conv1d.bias", "dt_bias", "A_log", "D", "norm.weight", "out_proj.weight"):
        assert f"model.layers.1.mamba.{suffix}" in names
    for suffix in ("q_proj", "k_proj", "v_proj", "o_proj", "q_norm", "k_norm"):
        assert f"model.layers.2.self_attn.{suffix}.weight" in names
    for suffix in ("pre_ffn_layernorm", "ffn.gate_proj", "ffn.up_proj", "ffn.down_proj"):
        assert f"model.layers.3.{suffix}.weight" in names
    assert "model.layers.3.input_layernorm.weight" not in names
    assert "model.layers.0.pre_ffn_layernorm.weight" not in names  # intermediate_size 0: no mixer FFN
    assert {"model.embed_tokens.weight", "model.final_layernorm.weight", "lm_head.weight"} <= names
    assert model.model.embed_tokens.weight.shape[0] == 300 + 2
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.model.layers[1].mamba.conv1d.weight.shape == (64 + 16, 1, 4)


@torch.no_grad()
def test_logits_are_divided_by_the_lm_head_row_norms_in_fp32():
    model = small_model(["a", "f"])
    ids, positions = random_ids(model.config, 2, 5), torch.arange(5).expand(2, 5)
    logits = model(ids, positions)
    assert logits.dtype == torch.float32 and logits.shape == (2, 5, 300)
    hidden = model.model(ids, positions)
    weight = model.lm_head.weight[:300]
    torch.testing.assert_close(logits, (hidden @ weight.T) / weight.norm(dim=1), rtol=1e-6, atol=1e-6)
    model.lm_head.weight.data[7] *= 10  # a row's scale must not change its logit
    torch.testing.assert_close(model.logits(hidden)[..., 7], logits[..., 7], rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_mixer_layers_carry_an_ffn_when_intermediate_size_is_set_and_relu2_works():
    model = small_model(["deltanet", "m2", "a", "f"], intermediate_size=48, ffn_expand_ratio=None, mlp_hidden_act="relu2")
    layer = model.model.layers[0]
    assert layer.ffn.up_proj.weight.shape == (48, 32) and not hasattr(layer.ffn, "gate_proj")
    x = torch.randn(1, 3, 32)
    torch.testing.assert_close(layer.ffn(x), layer.ffn.down_proj(F.relu(layer.ffn.up_proj(x)) ** 2))
    assert torch.isfinite(model(random_ids(model.config, 1, 6))).all()


def test_attend_sees_exactly_the_window():
    q = torch.zeros(1, 6, 1, 2)
    k = torch.zeros(1, 6, 1, 2)
    v = torch.eye(6)[None, :, None, :]  # value j is the one-hot of position j
    out = attend(q, k, v, 0, 0, 1.0, sliding_window=3)[0, :, 0]  # uniform weights over the visible keys
    expected = torch.tensor([[1.0 if i - 3 < j <= i else 0.0 for j in range(6)] for i in range(6)])
    torch.testing.assert_close(out, expected / expected.sum(1, keepdim=True))


@torch.no_grad()
def test_sliding_window_layer_ignores_tokens_outside_the_window():
    model = small_model(["a"], sliding_window=4)
    ids = random_ids(model.config, 1, 10)
    changed = ids.clone()
    changed[0, 0] = (ids[0, 0] + 1) % 300
    a, b = model(ids), model(changed)
    assert (a[0, 0] - b[0, 0]).abs().max() > 1e-4
    torch.testing.assert_close(a[0, 4:], b[0, 4:], rtol=0, atol=0)


def test_ntk_rope_changes_the_base():
    plain = small_config(["a"])
    ntk = small_config(["a"], rope_type="ntk", orig_max_position_embeddings=1024, max_position_embeddings=4096)
    from trtllm_flash.modeling.attention import NemotronFlashAttention

    base = NemotronFlashAttention(plain, 0).rotary_emb.base
    scaled = NemotronFlashAttention(ntk, 0).rotary_emb.base
    assert abs(scaled - base * (2 * 4096 / 1024 - 1) ** (8 / 6)) < 1e-6 * scaled


def test_seeded_init_is_reproducible_and_mamba_scalars_are_in_range():
    a, b, c = (load_model("tiny", seed=s) for s in (0, 0, 1))
    torch.testing.assert_close(a.state_dict(), b.state_dict(), rtol=0, atol=0)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    mamba = next(layer.mamba for layer in a.model.layers if hasattr(layer, "mamba"))
    assert ((mamba.A_log.exp() >= 1) & (mamba.A_log.exp() <= 16)).all()
    dt = F.softplus(mamba.dt_bias)
    assert ((dt >= 1e-3 - 1e-6) & (dt <= 1e-1 + 1e-6)).all() and (mamba.D == 1).all()
    assert abs(a.model.embed_tokens.weight.std().item() - a.config.initializer_range) < 0.005
