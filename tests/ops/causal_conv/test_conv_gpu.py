"""Real 1B / 3B causal-conv shapes in bf16 on the GPU: T = 8192 prefill and a batch-64 decode vs the reference."""
import pytest
import torch
from conv_cases import flattened_batch, random_weights, random_x, run_cached

import trtllm_flash.ops.causal_conv  # noqa: F401  (registers the ops)
from trtllm_flash.ops.causal_conv import conv_step

CHANNELS = {"1b": 4096 + 2 * 128, "3b": 6400}


@pytest.mark.gpu
@pytest.mark.parametrize("model", list(CHANNELS))
def test_prefill_8k_and_decode_64(model):
    c, k = CHANNELS[model], 4
    weight, bias = (t.cuda() for t in random_weights(c=c, k=k, dtype=torch.bfloat16))
    seq = random_x(8192, c=c, dtype=torch.bfloat16).cuda()
    pool = torch.zeros(66, c, k - 1, dtype=torch.bfloat16, device="cuda")
    x, meta = flattened_batch([seq], [0], [5])
    y = run_cached(torch.ops.trtllm_flash.cached_causal_conv1d, x, meta, (weight, bias), pool)
    y_ref = torch.ops.trtllm_flash.causal_conv1d(seq.cpu(), weight.cpu(), bias.cpu(), "silu")
    torch.testing.assert_close(y.cpu().float(), y_ref.float(), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(pool[5], seq[0, -(k - 1):].T, atol=0, rtol=0)

    slots = torch.randperm(65)[:64].tolist()
    before = torch.randn(66, c, k - 1, device="cuda").to(torch.bfloat16)
    pool = before.clone()
    x = random_x(1, b=64, c=c, dtype=torch.bfloat16, seed=1).cuda()
    x, meta = flattened_batch(list(x.split(1)), [7] * 64, slots, decode_layout=True)
    y = run_cached(torch.ops.trtllm_flash.cached_causal_conv1d, x, meta, (weight, bias), pool)
    y_ref, window = conv_step(before[slots], x[:, 0], weight, bias, "silu")
    torch.testing.assert_close(y[:, 0].float(), y_ref, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(pool[slots], window.to(torch.bfloat16), atol=0, rtol=0)
