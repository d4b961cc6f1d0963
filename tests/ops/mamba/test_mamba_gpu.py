"""Real 1B / 3B Mamba2 shapes in bf16 on the GPU: T = 8192 prefill and a batch-64 decode vs the reference."""
import pytest
import torch
from mamba_cases import DT_MAX, DT_MIN, flattened_batch, random_params, random_tokens, run_cached

import trtllm_flash.ops.mamba  # noqa: F401  (registers the ops)
from trtllm_flash.ops.mamba import ssd_chunked, ssm_step

SHAPES = {"1b": dict(h=64, p=64, g=1, n=128), "3b": dict(h=96, p=64, g=1, n=128)}


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(SHAPES))
def test_prefill_8k_and_decode_64(model):
    shape = SHAPES[model]
    h, p, n = shape["h"], shape["p"], shape["n"]
    params = random_params(h=h, seed=0, device="cuda")
    seq = random_tokens(1, 8192, **shape, dtype=torch.bfloat16, seed=0, device="cuda")
    pool = torch.zeros(66, h, p, n, device="cuda")
    tokens, meta = flattened_batch([seq], [0], [5])
    y = run_cached(torch.ops.trtllm_flash.cached_ssm, tokens, params, meta, pool, chunk_size=128)
    A, D, dt_bias = params
    y_ref, s_ref = ssd_chunked(seq[0], seq[1], A, seq[2], seq[3], D, dt_bias, DT_MIN, DT_MAX, 128)
    torch.testing.assert_close(y.float(), y_ref.float(), atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(pool[5], s_ref[0], atol=5e-2, rtol=5e-2)

    slots = torch.randperm(65)[:64].tolist()
    before = torch.randn(66, h, p, n, device="cuda")
    pool = before.clone()
    steps = [random_tokens(1, 1, **shape, dtype=torch.bfloat16, seed=1 + i, device="cuda") for i in range(64)]
    tokens, meta = flattened_batch(steps, [7] * 64, slots, decode_layout=True)
    y = run_cached(torch.ops.trtllm_flash.cached_ssm, tokens, params, meta, pool, chunk_size=128)
    x, dt, B, C = (t[:, 0] for t in tokens)
    y_ref, s_ref = ssm_step(before[slots], x, dt, A, B, C, D, dt_bias, DT_MIN, DT_MAX)
    torch.testing.assert_close(y.reshape(64, h, p).float(), y_ref, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(pool[slots], s_ref, atol=1e-4, rtol=1e-4)
